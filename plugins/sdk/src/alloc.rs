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
