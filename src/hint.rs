//! Cache hints for the per-connection state of thousands of concurrent sessions.
//!
//! With a few thousand sessions open, a connection's state has left the core's caches by the
//! time its next packet comes (thousands of other packets in between), and loading it stalls
//! the reading thread. Where the state a later stage will need is known early (the analyzer's
//! state of a connection, known as soon as bytes for it arrive and well before they are split
//! and decoded), asking for it then lets that work hide the latency.

/// Asks the CPU to start loading the cache lines of `*value` (at most `MAX_LINES`). A hint:
/// it reads nothing, has no effect on results, and is a no-op where unsupported.
#[inline]
pub fn prefetch<T>(value: &T) {
    prefetch_bytes((value as *const T).cast::<u8>(), std::mem::size_of::<T>());
}

/// The most lines one call asks for: more would crowd out what the current packet needs.
pub const MAX_LINES: usize = 24;

#[inline]
fn prefetch_bytes(start: *const u8, len: usize) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        for off in (0..len.min(MAX_LINES * 64)).step_by(64) {
            // SAFETY: a prefetch never faults and reads nothing architecturally, so any address
            // is sound; these all lie within the borrowed value anyway. SSE, which it needs, is
            // part of every x86-64 CPU.
            unsafe {
                _mm_prefetch::<_MM_HINT_T0>(start.wrapping_add(off).cast::<i8>());
            }
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (start, len);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefetch_of_any_size_is_harmless() {
        let small = 7u8;
        prefetch(&small);
        let big = vec![0u64; 10_000];
        prefetch(big.as_slice().first_chunk::<1000>().unwrap_or(&[0; 1000]));
        let zst = ();
        prefetch(&zst);
        assert_eq!(small, 7);
        assert_eq!(big.len(), 10_000);
    }
}
