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

/// Offsets of the cache lines `prefetch` asks for in a value of `len` bytes: one per 64-byte
/// line from the start, at most [`MAX_LINES`].
#[inline]
fn line_offsets(len: usize) -> impl Iterator<Item = usize> {
    (0..len.min(MAX_LINES * 64)).step_by(64)
}

#[inline]
fn prefetch_bytes(start: *const u8, len: usize) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        for off in line_offsets(len) {
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
    fn lines_asked_for_cover_the_value_up_to_the_cap() {
        let lines = |len| line_offsets(len).collect::<Vec<_>>();
        assert_eq!(lines(0), Vec::<usize>::new());
        assert_eq!(lines(1), vec![0]);
        assert_eq!(lines(64), vec![0]);
        assert_eq!(lines(65), vec![0, 64]);
        // Every offset lies inside the value, one per line it spans, never past the cap.
        for len in [100, 1256, MAX_LINES * 64, MAX_LINES * 64 + 1, 1 << 20] {
            let l = lines(len);
            assert_eq!(l.len(), len.div_ceil(64).min(MAX_LINES), "len {len}");
            assert!(l.iter().all(|&o| o < len && o % 64 == 0), "len {len}");
        }
    }

    #[test]
    fn prefetch_of_any_size_leaves_the_value_alone() {
        let small = 7u8;
        prefetch(&small);
        let big = [3u64; 10_000];
        prefetch(&big);
        prefetch(&());
        assert_eq!(small, 7);
        assert!(big.iter().all(|&v| v == 3));
    }
}
