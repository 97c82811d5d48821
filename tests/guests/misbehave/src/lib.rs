//! A verb for the sandbox tests (not a real verb): `object.content` picks a
//! misbehaviour — "spin" loops forever, "hog" grows memory without bound,
//! "panic" panics, "reject" refuses politely — and anything else is valid.
//! `react` answers "spin" by looping too.

use weft_guest::verb::{Activity, Context, Guest, Intent, Rejection};
use weft_guest::{Json, reject};

struct Misbehave;

fn spin() -> ! {
    let mut n: u64 = 0;
    loop {
        n = std::hint::black_box(n.wrapping_add(1));
    }
}

impl Guest for Misbehave {
    fn validate(activity: Activity) -> Result<(), Rejection> {
        let json = Json::parse(&activity)?;
        match json.object_str("content").unwrap_or_default() {
            "spin" => spin(),
            "hog" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![1u8; 1 << 20]);
                    std::hint::black_box(&hoard);
                }
            }
            "panic" => panic!("the misbehave verb panicked on purpose"),
            "reject" => Err(reject("refused on purpose")),
            _ => Ok(()),
        }
    }

    fn react(activity: Activity, _context: Context) -> Vec<Intent> {
        if activity.json.contains("spin") {
            spin();
        }
        Vec::new()
    }
}

weft_guest::verb::export_verb!(Misbehave);
