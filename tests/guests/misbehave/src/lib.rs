//! A verb for the sandbox tests (not a real verb): `object.content` picks a
//! misbehaviour, and anything else is valid:
//! - "spin" loops forever; "hog" grows memory without bound; "deep"
//!   recurses without bound; "huge" answers with a 100 MB rejection;
//! - "panic" panics; "unreachable" executes `unreachable`; "reject"
//!   refuses politely;
//! - "remember" refuses if an earlier call left a mark in the instance's
//!   globals (it never should: every call gets a fresh instance).
//!
//! `react` loops when the activity mentions "react-spin", and asks for a
//! thousand intents when it mentions "react-flood".

use std::sync::atomic::{AtomicU32, Ordering};

use weft_guest_v0_1::verb::{Activity, Context, Guest, Intent, Rejection};
use weft_guest_v0_1::{Json, reject};

struct Misbehave;

/// State a module might try to keep between calls.
static CALLS: AtomicU32 = AtomicU32::new(0);

fn spin() -> ! {
    let mut n: u64 = 0;
    loop {
        n = std::hint::black_box(n.wrapping_add(1));
    }
}

/// Recurses until the stack runs out: a frame of wasm locals only (no
/// shadow stack in linear memory), so it is the engine's call stack that
/// overflows.
fn deep(n: u64) -> u64 {
    if n == u64::MAX {
        return 0;
    }
    deep(std::hint::black_box(n + 1)).wrapping_add(1)
}

impl Guest for Misbehave {
    fn validate(activity: Activity) -> Result<(), Rejection> {
        let json = Json::parse(&activity)?;
        match json.object_str("content").unwrap_or_default() {
            "spin" => spin(),
            "hog" => {
                // Capacity, not content: memory grows fast, fuel is barely spent.
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    let mut chunk = Vec::with_capacity(4 << 20);
                    chunk.push(1u8);
                    hoard.push(std::hint::black_box(chunk));
                }
            }
            "deep" => {
                std::hint::black_box(deep(0));
                Ok(())
            }
            "huge" => Err(reject("x".repeat(100 << 20))),
            "panic" => panic!("the misbehave verb panicked on purpose"),
            "unreachable" => {
                #[cfg(target_arch = "wasm32")]
                core::arch::wasm32::unreachable();
                #[cfg(not(target_arch = "wasm32"))]
                unreachable!("only built for wasm32")
            }
            "reject" => Err(reject("refused on purpose")),
            "remember" => match CALLS.fetch_add(1, Ordering::Relaxed) {
                0 => Ok(()),
                n => Err(reject(format!("an earlier call left state behind ({n})"))),
            },
            _ => Ok(()),
        }
    }

    fn react(activity: Activity, context: Context) -> Vec<Intent> {
        if activity.json.contains("react-spin") {
            spin();
        }
        if activity.json.contains("react-flood") {
            return (0..1000)
                .map(|_| Intent {
                    actor: context.recipient.clone(),
                    draft: r#"{"type":"Misbehave","object":{"content":"fine"}}"#.into(),
                })
                .collect();
        }
        Vec::new()
    }
}

weft_guest_v0_1::verb::export_verb!(Misbehave);
