//! Helpers shared by the fuzz targets: a reassembly-event checker and small builders.

use std::collections::HashMap;

use msyncdump::net::{ConnId, PktCtx, StreamEvent, StreamSink};

/// A [`StreamSink`] that asserts the guarantees `msyncdump::net` documents: per connection
/// `Open` first and `Close` exactly once with nothing after it; per direction `Data` and `Gap`
/// tiling the stream from offset 0.
#[derive(Default)]
pub struct CheckingSink {
    conns: HashMap<ConnId, ConnCheck>,
    pub data_bytes: u64,
    pub gap_bytes: u64,
}

#[derive(Default)]
struct ConnCheck {
    next: [u64; 2],
    closed: bool,
}

impl CheckingSink {
    fn conn(&mut self, id: ConnId, what: &str) -> &mut ConnCheck {
        let c = self.conns.get_mut(&id);
        let c = match c {
            Some(c) => c,
            None => panic!("{what} for connection {id:?} before its Open"),
        };
        assert!(!c.closed, "{what} for connection {id:?} after its Close");
        c
    }

    /// Every connection that was opened has been closed (call after `Net::finish`).
    pub fn assert_all_closed(&self) {
        for (id, c) in &self.conns {
            assert!(c.closed, "connection {id:?} never closed");
        }
    }
}

impl StreamSink for CheckingSink {
    fn event(&mut self, _pkt: PktCtx, ev: StreamEvent<'_>) {
        match ev {
            StreamEvent::Open(meta) => {
                let prev = self.conns.insert(meta.id, ConnCheck::default());
                assert!(prev.is_none(), "connection {:?} opened twice", meta.id);
            }
            StreamEvent::Data { conn, dir, offset, data } => {
                assert!(!data.is_empty(), "empty Data event");
                let c = self.conn(conn, "Data");
                let next = &mut c.next[dir.index()];
                assert_eq!(offset, *next, "Data of {conn:?} {dir:?} does not continue the stream");
                *next += data.len() as u64;
                self.data_bytes += data.len() as u64;
            }
            StreamEvent::Gap { conn, dir, offset, len } => {
                assert!(len > 0, "empty Gap event");
                let c = self.conn(conn, "Gap");
                let next = &mut c.next[dir.index()];
                assert_eq!(offset, *next, "Gap of {conn:?} {dir:?} does not continue the stream");
                *next += len;
                self.gap_bytes += len;
            }
            StreamEvent::Note { conn, .. } => {
                self.conn(conn, "Note");
            }
            StreamEvent::Close { conn, .. } => {
                self.conn(conn, "Close").closed = true;
            }
        }
    }
}
