//! `memcmp` and `bcmp` for modules, eight bytes at a time. Every string
//! comparison in a module ends in one of them (`==` and `Ord` of `str`, a
//! `BTreeMap` of keys, `starts_with`), and the ones `wasm32` gets otherwise
//! (compiler-builtins', weak symbols, which these replace) compare a byte
//! per iteration: a projection's keys share long prefixes (actor URLs), so
//! its folds spent a tenth of their time there. Not a general libc: these
//! two only, on `wasm32` only.

/// Compares `n` bytes at `a` and `b`: negative, zero or positive as the
/// first differing byte of `a` is below, equal to or above `b`'s.
///
/// # Safety
/// `a` and `b` must be valid for reads of `n` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    let mut at = 0;
    while at + 8 <= n {
        // SAFETY: `at + 8 <= n` bytes are readable from both; unaligned
        // loads are allowed.
        let (x, y) = unsafe {
            (
                a.add(at).cast::<u64>().read_unaligned(),
                b.add(at).cast::<u64>().read_unaligned(),
            )
        };
        if x != y {
            // Little-endian: the lowest differing bit is in the first
            // differing byte.
            let byte = ((x ^ y).trailing_zeros() / 8) as usize;
            // SAFETY: `byte < 8`, within the word just read.
            let (p, q) = unsafe { (*a.add(at + byte), *b.add(at + byte)) };
            return i32::from(p) - i32::from(q);
        }
        at += 8;
    }
    while at < n {
        // SAFETY: `at < n`.
        let (p, q) = unsafe { (*a.add(at), *b.add(at)) };
        if p != q {
            return i32::from(p) - i32::from(q);
        }
        at += 1;
    }
    0
}

/// Whether `n` bytes at `a` and `b` differ (non-zero) or not (zero).
///
/// # Safety
/// `a` and `b` must be valid for reads of `n` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    // SAFETY: the caller's guarantee is memcmp's.
    unsafe { memcmp(a, b, n) }
}
