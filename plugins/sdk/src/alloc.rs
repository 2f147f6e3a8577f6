//! A small-object allocator for plugins ([`small_object_allocator!`](crate::small_object_allocator)).
//!
//! Every string and list the host passes a plugin is a separate allocation in the plugin's
//! memory, made through the component's `cabi_realloc` while the host lowers the call's
//! arguments, and freed when the plugin drops them: a routing decision over nine
//! operators makes about a hundred of each. The general-purpose allocator that Rust's
//! standard library uses on `wasm32-wasip2` (wasi-libc's dlmalloc) spends more on each of
//! those than this one, which keeps a free list per power-of-two size class:
//!
//! - an allocation of up to 4 KiB takes the first free block of its class, or carves a new
//!   one from a 64 KiB chunk taken from the system allocator;
//! - freeing a small block puts it back on its class's list (chunks are never returned:
//!   a plugin's working set comes back call after call);
//! - anything larger, or more aligned, goes to the system allocator as before.
//!
//! A component instance runs one call at a time on one thread, which is what makes the
//! unsynchronised state sound; the macro only installs it when compiling for `wasm32`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::UnsafeCell;
use std::ptr;

/// log2 of the smallest block (8 bytes: room for the free list's link).
const MIN_SHIFT: u32 = 3;
/// Size classes: 8 B to 4 KiB.
const CLASSES: usize = 10;
/// Largest block served from the classes.
const MAX_SMALL: usize = 1 << (MIN_SHIFT as usize + CLASSES - 1);
/// What is taken from the system allocator at a time.
const CHUNK: usize = 64 * 1024;

struct State {
    /// Head of each class's free list (each free block starts with the next one's address).
    free: [*mut u8; CLASSES],
    /// The unused rest of the current chunk.
    next: *mut u8,
    end: *mut u8,
}

/// The allocator; install it with [`small_object_allocator!`](crate::small_object_allocator).
pub struct SmallObjects {
    state: UnsafeCell<State>,
}

// SAFETY: a component instance is single-threaded (one call at a time, no threads), and
// `small_object_allocator!` installs this allocator only on `wasm32`.
#[allow(unsafe_code)]
unsafe impl Sync for SmallObjects {}

impl SmallObjects {
    /// An empty allocator.
    pub const fn new() -> Self {
        SmallObjects {
            state: UnsafeCell::new(State {
                free: [ptr::null_mut(); CLASSES],
                next: ptr::null_mut(),
                end: ptr::null_mut(),
            }),
        }
    }
}

impl Default for SmallObjects {
    fn default() -> Self {
        Self::new()
    }
}

/// The class of `layout` and its block size, or `None` when it is not small.
fn class(layout: Layout) -> Option<(usize, usize)> {
    let size = layout.size().max(layout.align()).max(1 << MIN_SHIFT);
    if size > MAX_SMALL {
        return None;
    }
    let block = size.next_power_of_two();
    Some(((block.trailing_zeros() - MIN_SHIFT) as usize, block))
}

#[allow(unsafe_code)]
// SAFETY (whole impl): small blocks are carved from chunks aligned to `MAX_SMALL`, at
// offsets that are multiples of their (power-of-two) size, so every block is aligned to
// its size, which is at least the layout's size and alignment; a block is only ever on one
// free list or handed out, never both; other layouts go to `System` unchanged.
unsafe impl GlobalAlloc for SmallObjects {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let Some((class, block)) = class(layout) else {
            return unsafe { System.alloc(layout) };
        };
        let state = unsafe { &mut *self.state.get() };
        let head = state.free[class];
        if !head.is_null() {
            state.free[class] = unsafe { *(head as *mut *mut u8) };
            return head;
        }
        let mut start = state.next.wrapping_add(state.next.align_offset(block));
        if state.next.is_null() || start.wrapping_add(block) > state.end {
            let Ok(chunk_layout) = Layout::from_size_align(CHUNK, MAX_SMALL) else {
                return ptr::null_mut();
            };
            let chunk = unsafe { System.alloc(chunk_layout) };
            if chunk.is_null() {
                return ptr::null_mut();
            }
            state.end = chunk.wrapping_add(CHUNK);
            start = chunk;
        }
        state.next = start.wrapping_add(block);
        start
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        let Some((class, _)) = class(layout) else {
            return unsafe { System.dealloc(ptr, layout) };
        };
        let state = unsafe { &mut *self.state.get() };
        unsafe { *(ptr as *mut *mut u8) = state.free[class] };
        state.free[class] = ptr;
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let Ok(new_layout) = Layout::from_size_align(new_size, layout.align()) else {
            return ptr::null_mut();
        };
        match (class(layout), class(new_layout)) {
            // Same block size: nothing moves.
            (Some((a, _)), Some((b, _))) if a == b => ptr,
            (None, None) => unsafe { System.realloc(ptr, layout, new_size) },
            _ => {
                let new = unsafe { self.alloc(new_layout) };
                if !new.is_null() {
                    unsafe {
                        ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
                        self.dealloc(ptr, layout);
                    }
                }
                new
            }
        }
    }
}

/// Makes [`SmallObjects`] the plugin's global allocator (on `wasm32`; a native build of the
/// crate, such as its unit tests, keeps the system allocator). Invoke it once, at the crate
/// root; plugins whose calls take many small strings and lists (routing policies: the
/// roster) gain the most.
#[macro_export]
macro_rules! small_object_allocator {
    () => {
        #[cfg(target_arch = "wasm32")]
        #[global_allocator]
        static __CENTRALINO_ALLOCATOR: $crate::alloc::SmallObjects =
            $crate::alloc::SmallObjects::new();
    };
}

#[cfg(test)]
#[allow(unsafe_code)]
mod tests {
    use super::*;

    fn layout(size: usize, align: usize) -> Layout {
        match Layout::from_size_align(size, align) {
            Ok(layout) => layout,
            Err(e) => panic!("{size}/{align}: {e}"),
        }
    }

    /// Allocates every layout, fills each block with its own byte, checks none was
    /// overwritten, frees them all.
    fn fill_and_check(heap: &SmallObjects, layouts: &[Layout]) -> Vec<usize> {
        let blocks: Vec<*mut u8> = layouts.iter().map(|l| unsafe { heap.alloc(*l) }).collect();
        for ((block, l), n) in blocks.iter().zip(layouts).zip(0u8..) {
            assert!(!block.is_null());
            assert_eq!(*block as usize % l.align(), 0, "{l:?} misaligned");
            unsafe { ptr::write_bytes(*block, n, l.size()) };
        }
        for ((block, l), n) in blocks.iter().zip(layouts).zip(0u8..) {
            let bytes = unsafe { std::slice::from_raw_parts(*block, l.size()) };
            assert!(bytes.iter().all(|b| *b == n), "{l:?} overwritten");
        }
        for (block, l) in blocks.iter().zip(layouts) {
            unsafe { heap.dealloc(*block, *l) };
        }
        blocks.into_iter().map(|b| b as usize).collect()
    }

    #[test]
    fn blocks_of_every_class_and_alignment_are_aligned_and_disjoint() {
        let heap = SmallObjects::new();
        let mut layouts = Vec::new();
        for size in [1, 3, 8, 9, 24, 100, 255, 256, 1000, 4096, 4097, 10_000] {
            for align in [1, 2, 8, 64, 4096] {
                layouts.push(layout(size, align));
            }
        }
        // More 4 KiB blocks than one chunk holds.
        layouts.extend(std::iter::repeat_n(layout(4096, 8), 40));
        let addresses = fill_and_check(&heap, &layouts);
        let mut unique = addresses.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), addresses.len());
    }

    #[test]
    fn a_freed_block_is_reused_by_its_class_and_only_by_it() {
        let heap = SmallObjects::new();
        let small = layout(20, 4);
        let first = unsafe { heap.alloc(small) };
        unsafe { heap.dealloc(first, small) };
        // Another class does not take it.
        let other = unsafe { heap.alloc(layout(100, 8)) };
        assert_ne!(other, first);
        // The same class does (sizes 17 to 32 share it).
        let again = unsafe { heap.alloc(layout(31, 1)) };
        assert_eq!(again, first);
    }

    #[test]
    fn realloc_keeps_the_block_within_its_class_and_the_bytes_across_classes() {
        let heap = SmallObjects::new();
        let start = layout(10, 1);
        let block = unsafe { heap.alloc(start) };
        unsafe { ptr::copy_nonoverlapping(b"centralino".as_ptr(), block, 10) };
        let same = unsafe { heap.realloc(block, start, 16) };
        assert_eq!(same, block);
        let moved = unsafe { heap.realloc(same, layout(16, 1), 6000) };
        assert_ne!(moved, block);
        let bytes = unsafe { std::slice::from_raw_parts(moved, 10) };
        assert_eq!(bytes, b"centralino");
        let back = unsafe { heap.realloc(moved, layout(6000, 1), 12) };
        assert_eq!(
            unsafe { std::slice::from_raw_parts(back, 10) },
            b"centralino"
        );
        unsafe { heap.dealloc(back, layout(12, 1)) };
    }
}
