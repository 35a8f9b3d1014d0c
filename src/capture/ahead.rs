//! Decompressing on a thread of its own. A compressed capture's decoder (zstd, gzip, LZ4) is
//! as slow as the dissection, or slower: run in line, the two add up; here they overlap, the
//! decoder filling a few chunks ahead of the reader. The first few MiB are decoded in line, so
//! a small capture starts no thread.
//!
//! Invariants:
//! - The bytes, and the error that ends them, reach the reader in the order the decoder gave
//!   them: the error after every byte decoded before it.
//! - The end of the input is said explicitly: a thread that stops without saying so (it
//!   panicked) is an error for the reader, never a silent end of the capture.
//! - Memory is bounded: at most [`DEPTH`] chunks of [`CHUNK`] bytes wait, plus the one being
//!   filled and the one being read.
//! - When the reader is dropped the thread stops at its next chunk (its send fails).

use std::io::{self, Read};
use std::mem;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::thread;

use super::fill;

const CHUNK: usize = 1 << 20;
const FIRST_CHUNK: usize = 16 << 10;
const DEPTH: usize = 4;

enum Msg {
    Data(Vec<u8>),
    Failed(io::Error),
    End,
}

/// Decompressed bytes given in line before the thread starts: a small capture never pays for
/// one (nor does a fuzzer's input).
const IN_LINE: u64 = 4 << 20;

pub(super) struct ReadAhead {
    /// The decoder, until the thread takes it.
    in_line: Option<Box<dyn Read + Send>>,
    given: u64,
    start_after: u64,
    chunks: Option<Chunks>,
    cur: Vec<u8>,
    pos: usize,
    ended: bool,
}

/// The thread's side of the hand-over.
struct Chunks {
    rx: Receiver<Msg>,
    /// Chunks read, handed back to be filled again.
    spare: SyncSender<Vec<u8>>,
}

impl ReadAhead {
    /// Whether a thread of its own pays: not on one core, where it would only add copies.
    pub(super) fn worth_it() -> bool {
        thread::available_parallelism().is_ok_and(|n| n.get() > 1)
    }

    /// Reads `src` in line for its first [`IN_LINE`] bytes, then on a thread of its own.
    pub(super) fn new(src: Box<dyn Read + Send>) -> ReadAhead {
        ReadAhead::starting_after(src, IN_LINE)
    }

    fn starting_after(src: Box<dyn Read + Send>, start_after: u64) -> ReadAhead {
        ReadAhead {
            in_line: Some(src),
            given: 0,
            start_after,
            chunks: None,
            cur: Vec::new(),
            pos: 0,
            ended: false,
        }
    }
}

/// Starts decoding `src` on a new thread. If the thread cannot be started, reading gives that
/// error.
fn start(mut src: Box<dyn Read + Send>) -> Chunks {
    let (tx, rx) = sync_channel(DEPTH);
    let (spare, spares) = sync_channel::<Vec<u8>>(DEPTH + 2);
    let started = thread::Builder::new().name("decompress".to_string()).spawn(move || {
        // The first chunks are small, so that the reader waits less for the first; they
        // double up to [`CHUNK`].
        let mut size = FIRST_CHUNK;
        loop {
            let mut buf = spares.try_recv().unwrap_or_default();
            // Zero-filled once per buffer: a recycled one keeps its capacity.
            buf.resize(size, 0);
            let (n, failed) = fill(&mut src, &mut buf);
            buf.truncate(n);
            // A send fails only once the reader is gone: nothing left to do then.
            if n > 0 && tx.send(Msg::Data(buf)).is_err() {
                return;
            }
            if let Some(e) = failed {
                let _ = tx.send(Msg::Failed(e));
                return;
            }
            if n < size {
                let _ = tx.send(Msg::End);
                return;
            }
            size = (size * 2).min(CHUNK);
        }
    });
    let rx = match started {
        Ok(_) => rx,
        Err(e) => {
            // Nothing will come on `rx`: the error is the rest of the stream.
            let (tx, rx) = sync_channel(1);
            let _ = tx.send(Msg::Failed(io::Error::new(
                e.kind(),
                format!("cannot start a thread to decompress the capture: {e}"),
            )));
            rx
        }
    };
    Chunks { rx, spare }
}

impl Read for ReadAhead {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if let Some(src) = self.in_line.as_mut() {
            if self.given < self.start_after {
                // As on the thread: the end, or the error that ends it, comes once.
                let got = src.read(out);
                let end = match &got {
                    Ok(n) => *n == 0 && !out.is_empty(),
                    Err(e) => e.kind() != io::ErrorKind::Interrupted,
                };
                if end {
                    self.in_line = None;
                }
                let n = got?;
                self.given += n as u64;
                return Ok(n);
            }
        }
        if let Some(src) = self.in_line.take() {
            self.chunks = Some(start(src));
        }
        let Some(chunks) = self.chunks.as_ref() else { return Ok(0) };
        loop {
            if let Some(ready) = self.cur.get(self.pos..).filter(|r| !r.is_empty()) {
                let n = ready.len().min(out.len());
                if let (Some(d), Some(s)) = (out.get_mut(..n), ready.get(..n)) {
                    d.copy_from_slice(s);
                }
                self.pos += n;
                return Ok(n);
            }
            if self.ended || out.is_empty() {
                return Ok(0);
            }
            let used = mem::take(&mut self.cur);
            self.pos = 0;
            if used.capacity() > 0 {
                // When the spares are full the buffer is freed instead: no matter.
                let _ = chunks.spare.try_send(used);
            }
            match chunks.rx.recv() {
                Ok(Msg::Data(buf)) => self.cur = buf,
                Ok(Msg::Failed(e)) => {
                    self.ended = true;
                    return Err(e);
                }
                Ok(Msg::End) => self.ended = true,
                Err(_) => {
                    self.ended = true;
                    return Err(io::Error::other("the decompressing thread stopped unexpectedly"));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Gives `data` in reads of odd sizes, then `fail` if any.
    struct Source {
        data: Vec<u8>,
        at: usize,
        fail: Option<io::ErrorKind>,
    }

    impl Read for Source {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.at == self.data.len() {
                return match self.fail {
                    Some(k) => Err(io::Error::new(k, "cut")),
                    None => Ok(0),
                };
            }
            let n = buf.len().min(self.data.len() - self.at).min(77_777);
            buf[..n].copy_from_slice(&self.data[self.at..self.at + n]);
            self.at += n;
            Ok(n)
        }
    }

    fn drain(r: &mut ReadAhead, step: usize) -> (Vec<u8>, Option<io::Error>) {
        let mut out = Vec::new();
        let mut buf = vec![0u8; step];
        loop {
            match r.read(&mut buf) {
                Ok(0) => return (out, None),
                Ok(n) => out.extend_from_slice(&buf[..n]),
                Err(e) => return (out, Some(e)),
            }
        }
    }

    #[test]
    fn bytes_then_the_end_or_the_error_in_order() {
        let doubled = FIRST_CHUNK * 3; // the first two chunks exactly
        for len in [0, 1, FIRST_CHUNK, doubled, CHUNK - 1, CHUNK, CHUNK + 1, 5 * CHUNK + 12_345] {
            let data: Vec<u8> = (0..len).map(|i| (i * 7 + i / 251) as u8).collect();
            for fail in [None, Some(io::ErrorKind::UnexpectedEof)] {
                for (step, after) in [(1000, 0), (3 * CHUNK, 0), (1000, 5000), (4096, IN_LINE)] {
                    let src = Source { data: data.clone(), at: 0, fail };
                    let mut r = ReadAhead::starting_after(Box::new(src), after);
                    let (got, err) = drain(&mut r, step);
                    let case = format!("len {len} fail {fail:?} step {step} after {after}");
                    assert!(got == data, "{case}");
                    assert_eq!(err.map(|e| e.kind()), fail, "{case}");
                    // After the end, the end again: never more bytes.
                    assert_eq!(r.read(&mut [0u8; 10]).ok(), Some(0));
                }
            }
        }
    }

    #[test]
    fn a_thread_that_dies_is_an_error_not_an_end() {
        struct Panics;
        impl Read for Panics {
            fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
                panic!("decoder bug");
            }
        }
        let mut r = ReadAhead::starting_after(Box::new(Panics), 0);
        let (got, err) = drain(&mut r, 100);
        assert!(got.is_empty());
        assert!(err.is_some_and(|e| e.to_string().contains("stopped unexpectedly")));
    }

    /// Dropping the reader early ends the thread rather than leaving it decoding (or blocked)
    /// to the end of the input: it stops within a few chunks.
    #[test]
    fn a_reader_dropped_early_stops_the_thread() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        use std::sync::Arc;
        struct Counted(Arc<AtomicUsize>);
        impl Read for Counted {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                self.0.fetch_add(buf.len(), Ordering::Relaxed);
                Ok(buf.len())
            }
        }
        let read = Arc::new(AtomicUsize::new(0));
        let mut r = ReadAhead::starting_after(Box::new(Counted(Arc::clone(&read))), 0);
        assert_eq!(r.read(&mut [0u8; 10]).ok(), Some(10));
        drop(r);
        let mut last = usize::MAX;
        for _ in 0..200 {
            std::thread::sleep(std::time::Duration::from_millis(10));
            let now = read.load(Ordering::Relaxed);
            if now == last {
                break;
            }
            last = now;
        }
        assert!(last <= (DEPTH + 3) * CHUNK, "{last} bytes read after the reader went");
    }
}
