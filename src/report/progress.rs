//! A progress line on stderr for long runs: the share of the input read, redrawn at most ten
//! times a second and erased at the end. Callers enable it only when stderr is a terminal, so
//! pipes and CI logs never see it.

use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::pipeline::shard::Position;

const REDRAW: Duration = Duration::from_millis(100);

#[derive(Debug)]
pub struct Progress {
    enabled: bool,
    /// Size of each input file; `None` for standard input or when it cannot be read.
    sizes: Vec<Option<u64>>,
    last: Option<Instant>,
    shown: bool,
}

impl Progress {
    pub fn new(files: &[PathBuf], enabled: bool) -> Self {
        let sizes = files
            .iter()
            .map(|f| {
                if f.as_os_str() == "-" {
                    return None;
                }
                std::fs::metadata(f).ok().map(|m| m.len())
            })
            .collect();
        Progress { enabled, sizes, last: None, shown: false }
    }

    /// Notes where the reader is; redraws the line when it is due.
    pub fn update(&mut self, pos: Position) {
        if !self.enabled || self.last.is_some_and(|t| t.elapsed() < REDRAW) {
            return;
        }
        self.last = Some(Instant::now());
        let line = self.line(pos);
        let mut err = std::io::stderr().lock();
        // Progress is a courtesy: a failing stderr must not fail the run.
        let _ = write!(err, "\r\x1b[K{line}");
        let _ = err.flush();
        self.shown = true;
    }

    fn line(&self, pos: Position) -> String {
        let before: Option<u64> = self.sizes.iter().take(pos.file).copied().sum();
        let total: Option<u64> = self.sizes.iter().copied().sum();
        let current = self.sizes.get(pos.file).copied().flatten();
        let mb = |b: u64| b as f64 / 1e6;
        match (before, total, current) {
            // Gzip input reads more bytes than the file holds: no share then.
            (Some(before), Some(total), Some(cur)) if pos.bytes <= cur && total > 0 => {
                let done = before + pos.bytes;
                let pct = (done as f64 * 100.0 / total as f64).min(100.0);
                format!("msyncdump: {pct:.0}% ({:.0} of {:.0} MB)", mb(done), mb(total))
            }
            _ => format!("msyncdump: file {}: {:.0} MB read", pos.file + 1, mb(pos.bytes)),
        }
    }

    /// Erases the line (before other output to stderr, and at the end).
    pub fn clear(&mut self) {
        if self.shown {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[K");
            let _ = err.flush();
            self.shown = false;
            // Redraw soon after whatever is printed next.
            self.last = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines() {
        let p = Progress {
            enabled: false,
            sizes: vec![Some(100), Some(300)],
            last: None,
            shown: false,
        };
        assert_eq!(p.line(Position { file: 0, bytes: 50 }), "msyncdump: 12% (0 of 0 MB)");
        assert_eq!(p.line(Position { file: 1, bytes: 300 }), "msyncdump: 100% (0 of 0 MB)");
        // More read than the file holds (gzip): bytes only.
        assert_eq!(p.line(Position { file: 0, bytes: 5_000_000 }), "msyncdump: file 1: 5 MB read");
        let stdin = Progress { enabled: false, sizes: vec![None], last: None, shown: false };
        assert_eq!(
            stdin.line(Position { file: 0, bytes: 2_000_000 }),
            "msyncdump: file 1: 2 MB read"
        );
    }
}
