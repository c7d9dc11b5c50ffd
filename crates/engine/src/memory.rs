//! Memory accounting: a counting wrapper around the global allocator (Redis's `used_memory`).
//! The count is spread over cache-line-padded slots chosen by the caller's stack address, so
//! threads rarely share a counter; reading sums all slots.

use std::alloc::{GlobalAlloc, Layout};
use std::sync::atomic::{AtomicIsize, Ordering};

const SLOTS: usize = 32;

#[repr(align(128))]
struct Slot(AtomicIsize);

static COUNTERS: [Slot; SLOTS] = [const { Slot(AtomicIsize::new(0)) }; SLOTS];

#[inline(always)]
fn slot() -> &'static AtomicIsize {
    let marker = 0u8;
    // Thread stacks are megabytes apart: the stack address picks a per-thread slot.
    let i = ((&marker as *const u8 as usize) >> 21) % SLOTS;
    &COUNTERS[i].0
}

/// Bytes currently allocated through `CountingAlloc`.
pub fn used_memory() -> usize {
    COUNTERS.iter().map(|c| c.0.load(Ordering::Relaxed)).sum::<isize>().max(0) as usize
}

pub struct CountingAlloc<A>(pub A);

unsafe impl<A: GlobalAlloc> GlobalAlloc for CountingAlloc<A> {
    #[inline]
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let p = self.0.alloc(l);
        if !p.is_null() {
            slot().fetch_add(l.size() as isize, Ordering::Relaxed);
        }
        p
    }
    #[inline]
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        slot().fetch_sub(l.size() as isize, Ordering::Relaxed);
        self.0.dealloc(p, l)
    }
    #[inline]
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        let p = self.0.alloc_zeroed(l);
        if !p.is_null() {
            slot().fetch_add(l.size() as isize, Ordering::Relaxed);
        }
        p
    }
    #[inline]
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        let q = self.0.realloc(p, l, new);
        if !q.is_null() {
            slot().fetch_add(new as isize - l.size() as isize, Ordering::Relaxed);
        }
        q
    }
}
