//! The allocator of Rust modules on `wasm32`: a bump arena that starts over
//! whenever nothing allocated in it is alive, in front of the default
//! allocator (dlmalloc). A call into a module allocates its arguments, its
//! keys, values and buffered writes, and frees all of them by the end of
//! the call (its result by the call's post-return), so the arena starts
//! over once per call and most allocations are a pointer bump; `free` of
//! one is a count down.
//!
//! Not a general-purpose allocator: an allocation larger than
//! [`LARGEST`], or one made when the arena is full, goes to dlmalloc; and
//! a module that keeps something allocated across calls (a static cache)
//! keeps the arena from starting over, so it fills and everything after
//! goes to dlmalloc as before. Modules are single-threaded; the arena is
//! not `Sync` in any other sense.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

/// The arena's size: taken from dlmalloc at the first allocation, kept for
/// the instance's life.
const SIZE: usize = 1 << 20;
/// Larger allocations go to dlmalloc.
const LARGEST: usize = 64 << 10;

/// The arena's bounds, its next free byte and how many of its allocations
/// are alive.
pub struct Arena {
    start: Cell<usize>,
    end: Cell<usize>,
    top: Cell<usize>,
    live: Cell<usize>,
}

// SAFETY: `wasm32` modules run on one thread (the target has no threads
// without the `atomics` feature, which weft's modules do not have).
unsafe impl Sync for Arena {}

impl Arena {
    pub const fn new() -> Self {
        Self {
            start: Cell::new(0),
            end: Cell::new(0),
            top: Cell::new(0),
            live: Cell::new(0),
        }
    }

    fn owns(&self, ptr: *mut u8) -> bool {
        let at = ptr as usize;
        at >= self.start.get() && at < self.end.get()
    }

    /// A bump allocation, or `None` when it does not fit.
    fn bump(&self, layout: Layout) -> Option<*mut u8> {
        if layout.size() > LARGEST {
            return None;
        }
        if self.start.get() == 0 {
            // SAFETY: a non-zero size and a valid alignment.
            let chunk = unsafe { System.alloc(Layout::from_size_align(SIZE, 16).ok()?) };
            if chunk.is_null() {
                return None;
            }
            self.start.set(chunk as usize);
            self.top.set(chunk as usize);
            self.end.set(chunk as usize + SIZE);
        }
        let at = self.top.get().checked_add(layout.align() - 1)? & !(layout.align() - 1);
        let next = at.checked_add(layout.size())?;
        if next > self.end.get() {
            return None;
        }
        self.top.set(next);
        self.live.set(self.live.get() + 1);
        Some(at as *mut u8)
    }
}

impl Default for Arena {
    fn default() -> Self {
        Self::new()
    }
}

// SAFETY: every pointer handed out is either the arena's (aligned, inside
// the chunk, not handed out again until every allocation of the arena is
// freed) or dlmalloc's, and `dealloc`/`realloc` tell them apart by address.
unsafe impl GlobalAlloc for Arena {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        match self.bump(layout) {
            Some(ptr) => ptr,
            // SAFETY: the caller's layout, as given.
            None => unsafe { System.alloc(layout) },
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if self.owns(ptr) {
            let live = self.live.get() - 1;
            self.live.set(live);
            if live == 0 {
                self.top.set(self.start.get());
            } else if ptr as usize + layout.size() == self.top.get() {
                // The newest allocation: its bytes can be used again.
                self.top.set(ptr as usize);
            }
        } else {
            // SAFETY: dlmalloc's pointer, with the layout it was made for.
            unsafe { System.dealloc(ptr, layout) }
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if self.owns(ptr) {
            let at = ptr as usize;
            // The newest allocation grows or shrinks in place.
            if at + layout.size() == self.top.get()
                && new_size <= LARGEST
                && at + new_size <= self.end.get()
            {
                self.top.set(at + new_size);
                return ptr;
            }
            if new_size <= layout.size() {
                return ptr;
            }
        } else {
            // What dlmalloc holds stays there.
            // SAFETY: dlmalloc's pointer and layout; the caller's size.
            return unsafe { System.realloc(ptr, layout, new_size) };
        }
        // SAFETY: `new_size` is non-zero (the caller's guarantee) with the
        // old alignment.
        let moved =
            unsafe { self.alloc(Layout::from_size_align_unchecked(new_size, layout.align())) };
        if !moved.is_null() {
            // SAFETY: both are valid for the smaller of the two sizes and
            // do not overlap (`moved` is a new allocation).
            unsafe {
                std::ptr::copy_nonoverlapping(ptr, moved, layout.size().min(new_size));
                self.dealloc(ptr, layout);
            }
        }
        moved
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(size: usize, align: usize) -> Layout {
        Layout::from_size_align(size, align).expect("a valid layout")
    }

    #[test]
    fn starts_over_when_nothing_is_alive() {
        let arena = Arena::new();
        // SAFETY (the whole test): each pointer is freed once, with its layout.
        unsafe {
            let a = arena.alloc(layout(10, 1));
            let b = arena.alloc(layout(24, 8));
            assert!(arena.owns(a) && arena.owns(b));
            assert_eq!(b as usize % 8, 0, "aligned");
            assert!(b as usize >= a as usize + 10, "no overlap");
            a.write_bytes(0xAA, 10);
            b.write_bytes(0xBB, 24);
            assert_eq!(*a.add(9), 0xAA);
            arena.dealloc(a, layout(10, 1));
            assert_ne!(arena.top.get(), arena.start.get(), "b is alive");
            arena.dealloc(b, layout(24, 8));
            assert_eq!(arena.top.get(), arena.start.get());
            assert_eq!(arena.live.get(), 0);
            assert_eq!(arena.alloc(layout(1, 1)), a, "the same bytes again");
        }
    }

    #[test]
    fn the_newest_grows_in_place_and_others_move() {
        let arena = Arena::new();
        unsafe {
            let a = arena.alloc(layout(8, 1));
            a.write_bytes(7, 8);
            let grown = arena.realloc(a, layout(8, 1), 100);
            assert_eq!(grown, a, "the newest grows in place");
            let b = arena.alloc(layout(4, 1));
            let moved = arena.realloc(a, layout(100, 1), 200);
            assert_ne!(moved, a, "not the newest: moved");
            assert_eq!(std::slice::from_raw_parts(moved, 8), &[7; 8], "copied");
            assert_eq!(arena.live.get(), 2, "the old one is freed");
            arena.dealloc(b, layout(4, 1));
            arena.dealloc(moved, layout(200, 1));
            assert_eq!(arena.live.get(), 0);
            assert_eq!(arena.top.get(), arena.start.get());
        }
    }

    #[test]
    fn large_and_overflowing_allocations_go_to_the_system() {
        let arena = Arena::new();
        unsafe {
            let large = arena.alloc(layout(LARGEST + 1, 8));
            assert!(!large.is_null() && !arena.owns(large));
            let mut held = Vec::new();
            while held.len() < SIZE / LARGEST + 2 {
                held.push(arena.alloc(layout(LARGEST, 8)));
            }
            assert!(held.iter().any(|p| arena.owns(*p)));
            assert!(
                held.iter().any(|p| !arena.owns(*p)),
                "the full arena hands over"
            );
            for p in held {
                p.write_bytes(1, LARGEST);
                arena.dealloc(p, layout(LARGEST, 8));
            }
            arena.dealloc(large, layout(LARGEST + 1, 8));
            assert_eq!(arena.live.get(), 0);
            assert_eq!(arena.top.get(), arena.start.get());
        }
    }

    /// Any sequence of allocations, frees and reallocations: live blocks
    /// never overlap, keep their bytes, and the arena starts over whenever
    /// none of its blocks is alive.
    mod sequences {
        use super::*;
        use proptest::prelude::*;

        #[derive(Debug, Clone)]
        enum Op {
            Alloc(usize, u32),
            Free(usize),
            Realloc(usize, usize),
        }

        fn op() -> impl Strategy<Value = Op> {
            prop_oneof![
                (
                    prop_oneof![1..64usize, 64..4096usize, (LARGEST - 8)..(LARGEST + 8)],
                    0..5u32
                )
                    .prop_map(|(size, align)| Op::Alloc(size, align)),
                any::<usize>().prop_map(Op::Free),
                (any::<usize>(), 1..9000usize).prop_map(|(i, size)| Op::Realloc(i, size)),
            ]
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(64))]
            #[test]
            fn blocks_stay_apart_and_intact(ops in proptest::collection::vec(op(), 1..300)) {
                let arena = Arena::new();
                // (pointer, layout, fill byte)
                let mut live: Vec<(*mut u8, Layout, u8)> = Vec::new();
                let mut fill = 0u8;
                let intact = |(p, l, f): &(*mut u8, Layout, u8)| {
                    // SAFETY: a live block of `l.size()` bytes.
                    unsafe { std::slice::from_raw_parts(*p, l.size()) }.iter().all(|b| b == f)
                };
                for op in ops {
                    fill = fill.wrapping_add(1);
                    // SAFETY (the match): pointers are live blocks with their layouts.
                    unsafe {
                        match op {
                            Op::Alloc(size, align) => {
                                let l = layout(size, 1 << align);
                                let p = arena.alloc(l);
                                prop_assert!(!p.is_null());
                                prop_assert_eq!(p as usize % l.align(), 0);
                                p.write_bytes(fill, size);
                                live.push((p, l, fill));
                            }
                            Op::Free(i) if !live.is_empty() => {
                                let (p, l, _) = live.swap_remove(i % live.len());
                                arena.dealloc(p, l);
                            }
                            Op::Realloc(i, size) if !live.is_empty() => {
                                let i = i % live.len();
                                let (p, l, f) = live[i];
                                let q = arena.realloc(p, l, size);
                                prop_assert!(!q.is_null());
                                let kept = l.size().min(size);
                                prop_assert!(std::slice::from_raw_parts(q, kept).iter().all(|b| *b == f));
                                q.write_bytes(f, size);
                                live[i] = (q, layout(size, l.align()), f);
                            }
                            _ => {}
                        }
                    }
                    let mut spans: Vec<(usize, usize)> =
                        live.iter().map(|(p, l, _)| (*p as usize, *p as usize + l.size())).collect();
                    spans.sort();
                    prop_assert!(spans.windows(2).all(|w| w[0].1 <= w[1].0), "blocks overlap");
                    prop_assert!(live.iter().all(intact));
                    let in_arena = live.iter().filter(|(p, ..)| arena.owns(*p)).count();
                    prop_assert_eq!(arena.live.get(), in_arena);
                    if in_arena == 0 {
                        prop_assert_eq!(arena.top.get(), arena.start.get());
                    }
                }
                for (p, l, _) in live {
                    // SAFETY: a live block with its layout.
                    unsafe { arena.dealloc(p, l) };
                }
                prop_assert_eq!(arena.live.get(), 0);
            }
        }
    }
}
