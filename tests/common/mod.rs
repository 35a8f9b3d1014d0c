//! Helpers shared by the integration tests that build their own captures.

/// A classic pcap (little-endian, µs, Ethernet) whose record headers can lie.
pub struct Pcap {
    pub buf: Vec<u8>,
    pub usec: u32,
}

impl Pcap {
    pub fn new() -> Pcap {
        let mut buf = Vec::new();
        buf.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
        buf.extend_from_slice(&2u16.to_le_bytes());
        buf.extend_from_slice(&4u16.to_le_bytes());
        buf.extend_from_slice(&[0; 8]);
        buf.extend_from_slice(&262_144u32.to_le_bytes());
        buf.extend_from_slice(&1u32.to_le_bytes());
        Pcap { buf, usec: 0 }
    }

    /// A record header with the given lengths, followed by `data` (which may be shorter).
    #[allow(dead_code)] // not every test file writes lying headers
    pub fn raw_record(&mut self, caplen: u32, orig_len: u32, data: &[u8]) {
        self.usec += 1000;
        self.buf.extend_from_slice(&1_509_019_200u32.to_le_bytes());
        self.buf.extend_from_slice(&self.usec.to_le_bytes());
        self.buf.extend_from_slice(&caplen.to_le_bytes());
        self.buf.extend_from_slice(&orig_len.to_le_bytes());
        self.buf.extend_from_slice(data);
    }

    pub fn packet(&mut self, data: &[u8]) {
        self.raw_record(data.len() as u32, data.len() as u32, data);
    }
}
