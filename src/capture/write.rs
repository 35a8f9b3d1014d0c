//! Writing captures (pcap and pcapng), for the synthesizer and for saving live traffic.
//!
//! Both formats are written little-endian. Classic pcap has a single link type per file and
//! either microsecond or nanosecond timestamps (told apart by the magic number). pcapng gets one
//! Section Header Block and one Interface Description Block per link type used; with
//! nanosecond timestamps each IDB carries `if_tsresol = 9`, otherwise the default resolution
//! (microseconds) applies and no option is written.
//!
//! Invariant: every record's captured length is `min(data.len(), snaplen)`; the bytes beyond
//! the snaplen are dropped, and `orig_len` is never written smaller than the captured length.

use std::io::{self, Write};

use super::{LinkType, Timestamp};

/// Output file format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CaptureFormat {
    Pcap,
    PcapNg,
}

const PCAP_MAGIC_MICROS: u32 = 0xa1b2_c3d4;
const PCAP_MAGIC_NANOS: u32 = 0xa1b2_3c4d;
const PCAPNG_SHB: u32 = 0x0a0d_0d0a;
const PCAPNG_IDB: u32 = 0x0000_0001;
const PCAPNG_EPB: u32 = 0x0000_0006;
const PCAPNG_BYTE_ORDER_MAGIC: u32 = 0x1a2b_3c4d;
const OPT_IF_TSRESOL: u16 = 9;

/// Streaming writer of one capture file.
pub struct CaptureWriter<W: Write> {
    out: W,
    format: CaptureFormat,
    snaplen: u32,
    nanos: bool,
    /// pcapng interfaces written so far, by interface id (the index). pcap: the one link type.
    links: Vec<LinkType>,
}

impl<W: Write> CaptureWriter<W> {
    /// Writes the file header (pcap) or the section header and the first interface (pcapng).
    pub fn new(
        out: W,
        format: CaptureFormat,
        link: LinkType,
        snaplen: u32,
        nanos: bool,
    ) -> io::Result<Self> {
        let mut w = CaptureWriter { out, format, snaplen, nanos, links: Vec::new() };
        match format {
            CaptureFormat::Pcap => {
                let magic = if nanos { PCAP_MAGIC_NANOS } else { PCAP_MAGIC_MICROS };
                let mut hdr = [0u8; 24];
                hdr[0..4].copy_from_slice(&magic.to_le_bytes());
                hdr[4..6].copy_from_slice(&2u16.to_le_bytes());
                hdr[6..8].copy_from_slice(&4u16.to_le_bytes());
                // thiszone and sigfigs stay 0.
                hdr[16..20].copy_from_slice(&snaplen.to_le_bytes());
                hdr[20..24].copy_from_slice(&link.0.to_le_bytes());
                w.out.write_all(&hdr)?;
                w.links.push(link);
            }
            CaptureFormat::PcapNg => {
                let mut shb = [0u8; 28];
                shb[0..4].copy_from_slice(&PCAPNG_SHB.to_le_bytes());
                shb[4..8].copy_from_slice(&28u32.to_le_bytes());
                shb[8..12].copy_from_slice(&PCAPNG_BYTE_ORDER_MAGIC.to_le_bytes());
                shb[12..14].copy_from_slice(&1u16.to_le_bytes());
                shb[14..16].copy_from_slice(&0u16.to_le_bytes());
                // Section length unknown (-1): we stream and never seek back.
                shb[16..24].copy_from_slice(&(-1i64).to_le_bytes());
                shb[24..28].copy_from_slice(&28u32.to_le_bytes());
                w.out.write_all(&shb)?;
                w.add_interface(link)?;
            }
        }
        Ok(w)
    }

    fn add_interface(&mut self, link: LinkType) -> io::Result<u32> {
        let link16 = u16::try_from(link.0).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("link type {} does not fit pcapng's 16 bits", link.0),
            )
        })?;
        let len: u32 = if self.nanos { 32 } else { 20 };
        let mut b = Vec::with_capacity(32);
        b.extend_from_slice(&PCAPNG_IDB.to_le_bytes());
        b.extend_from_slice(&len.to_le_bytes());
        b.extend_from_slice(&link16.to_le_bytes());
        b.extend_from_slice(&0u16.to_le_bytes());
        b.extend_from_slice(&self.snaplen.to_le_bytes());
        if self.nanos {
            b.extend_from_slice(&OPT_IF_TSRESOL.to_le_bytes());
            b.extend_from_slice(&1u16.to_le_bytes());
            b.extend_from_slice(&[9, 0, 0, 0]);
            // opt_endofopt
            b.extend_from_slice(&[0, 0, 0, 0]);
        }
        b.extend_from_slice(&len.to_le_bytes());
        self.out.write_all(&b)?;
        let id = self.links.len() as u32;
        self.links.push(link);
        Ok(id)
    }

    /// Writes one record on the first interface; `orig_len` may exceed `data.len()`
    /// (snaplen-cut records).
    pub fn write_packet(&mut self, ts: Timestamp, data: &[u8], orig_len: u32) -> io::Result<()> {
        let link = self.links.first().copied().unwrap_or(LinkType::ETHERNET);
        self.write_packet_on(link, ts, data, orig_len)
    }

    /// Writes one record of the given link type. pcapng adds an interface the first time a
    /// link type is used; pcap can hold only the link type it was created with.
    pub fn write_packet_on(
        &mut self,
        link: LinkType,
        ts: Timestamp,
        data: &[u8],
        orig_len: u32,
    ) -> io::Result<()> {
        let caplen = data.len().min(self.snaplen as usize);
        let data = data.get(..caplen).unwrap_or(data);
        // caplen <= snaplen, a u32.
        let caplen32 = caplen as u32;
        let orig_len = orig_len.max(caplen32);
        // Times before 1970 cannot be written; clamp rather than wrap.
        let nanos_total = u64::try_from(ts.0).unwrap_or(0);
        match self.format {
            CaptureFormat::Pcap => {
                if self.links.first() != Some(&link) {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidInput,
                        format!("pcap file holds one link type; cannot add {link}"),
                    ));
                }
                let secs = (nanos_total / 1_000_000_000) as u32;
                let sub = nanos_total % 1_000_000_000;
                let frac = if self.nanos { sub } else { sub / 1000 } as u32;
                let mut hdr = [0u8; 16];
                hdr[0..4].copy_from_slice(&secs.to_le_bytes());
                hdr[4..8].copy_from_slice(&frac.to_le_bytes());
                hdr[8..12].copy_from_slice(&caplen32.to_le_bytes());
                hdr[12..16].copy_from_slice(&orig_len.to_le_bytes());
                self.out.write_all(&hdr)?;
                self.out.write_all(data)
            }
            CaptureFormat::PcapNg => {
                let ifid = match self.links.iter().position(|l| *l == link) {
                    Some(i) => i as u32,
                    None => self.add_interface(link)?,
                };
                let units = if self.nanos { nanos_total } else { nanos_total / 1000 };
                let pad = (4 - caplen % 4) % 4;
                let total = u32::try_from(32 + caplen + pad).map_err(|_| {
                    io::Error::new(io::ErrorKind::InvalidInput, "packet too large for pcapng")
                })?;
                let mut hdr = [0u8; 28];
                hdr[0..4].copy_from_slice(&PCAPNG_EPB.to_le_bytes());
                hdr[4..8].copy_from_slice(&total.to_le_bytes());
                hdr[8..12].copy_from_slice(&ifid.to_le_bytes());
                hdr[12..16].copy_from_slice(&((units >> 32) as u32).to_le_bytes());
                hdr[16..20].copy_from_slice(&(units as u32).to_le_bytes());
                hdr[20..24].copy_from_slice(&caplen32.to_le_bytes());
                hdr[24..28].copy_from_slice(&orig_len.to_le_bytes());
                self.out.write_all(&hdr)?;
                self.out.write_all(data)?;
                self.out.write_all([0u8; 3].get(..pad).unwrap_or_default())?;
                self.out.write_all(&total.to_le_bytes())
            }
        }
    }

    /// Flushes and returns the underlying writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.out.flush()?;
        Ok(self.out)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn ts() -> Timestamp {
        Timestamp::from_secs_nanos(1_508_992_048, 743_123_456)
    }

    #[test]
    fn pcap_micros_layout() {
        let mut w =
            CaptureWriter::new(Vec::new(), CaptureFormat::Pcap, LinkType::ETHERNET, 65535, false)
                .unwrap();
        w.write_packet(ts(), &[1, 2, 3], 3).unwrap();
        let b = w.finish().unwrap();
        let mut want = vec![
            0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 1, 0, 0,
            0,
        ];
        want.extend_from_slice(&1_508_992_048u32.to_le_bytes());
        want.extend_from_slice(&743_123u32.to_le_bytes());
        want.extend_from_slice(&[3, 0, 0, 0, 3, 0, 0, 0, 1, 2, 3]);
        assert_eq!(b, want);
    }

    #[test]
    fn pcap_nanos_and_snaplen() {
        let mut w =
            CaptureWriter::new(Vec::new(), CaptureFormat::Pcap, LinkType::RAW, 2, true).unwrap();
        w.write_packet(ts(), &[1, 2, 3], 3).unwrap();
        let b = w.finish().unwrap();
        assert_eq!(&b[0..4], &[0x4d, 0x3c, 0xb2, 0xa1]);
        assert_eq!(&b[16..20], &[2, 0, 0, 0]);
        assert_eq!(&b[20..24], &[101, 0, 0, 0]);
        assert_eq!(&b[28..32], &743_123_456u32.to_le_bytes());
        assert_eq!(&b[32..36], &[2, 0, 0, 0]);
        assert_eq!(&b[36..40], &[3, 0, 0, 0]);
        assert_eq!(&b[40..], &[1, 2]);
    }

    #[test]
    fn pcap_rejects_second_link_type() {
        let mut w =
            CaptureWriter::new(Vec::new(), CaptureFormat::Pcap, LinkType::RAW, 100, true).unwrap();
        assert!(w.write_packet_on(LinkType::ETHERNET, ts(), &[0], 1).is_err());
    }

    #[test]
    fn pcapng_micros_layout() {
        let mut w = CaptureWriter::new(
            Vec::new(),
            CaptureFormat::PcapNg,
            LinkType::ETHERNET,
            262144,
            false,
        )
        .unwrap();
        w.write_packet(ts(), &[0xaa, 0xbb, 0xcc, 0xdd, 0xee], 60).unwrap();
        let b = w.finish().unwrap();
        let shb: Vec<u8> = [
            &[0x0a, 0x0d, 0x0d, 0x0a, 28, 0, 0, 0, 0x4d, 0x3c, 0x2b, 0x1a, 1, 0, 0, 0][..],
            &[0xff; 8][..],
            &[28, 0, 0, 0][..],
        ]
        .concat();
        assert_eq!(&b[..28], &shb[..]);
        let idb = [1, 0, 0, 0, 20, 0, 0, 0, 1, 0, 0, 0, 0x00, 0x00, 0x04, 0x00, 20, 0, 0, 0];
        assert_eq!(&b[28..48], &idb);
        let epb = &b[48..];
        assert_eq!(epb.len(), 40);
        assert_eq!(&epb[0..8], &[6, 0, 0, 0, 40, 0, 0, 0]);
        assert_eq!(&epb[8..12], &[0, 0, 0, 0]);
        let units: u64 = 1_508_992_048_743_123;
        assert_eq!(&epb[12..16], &((units >> 32) as u32).to_le_bytes());
        assert_eq!(&epb[16..20], &(units as u32).to_le_bytes());
        assert_eq!(&epb[20..28], &[5, 0, 0, 0, 60, 0, 0, 0]);
        assert_eq!(&epb[28..36], &[0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0, 0, 0]);
        assert_eq!(&epb[36..40], &[40, 0, 0, 0]);
    }

    #[test]
    fn pcapng_nanos_and_second_interface() {
        let mut w =
            CaptureWriter::new(Vec::new(), CaptureFormat::PcapNg, LinkType::RAW, 1000, true)
                .unwrap();
        w.write_packet(ts(), &[1, 2, 3, 4], 4).unwrap();
        w.write_packet_on(LinkType::ETHERNET, ts(), &[5], 1).unwrap();
        let b = w.finish().unwrap();
        let idb = [
            1, 0, 0, 0, 32, 0, 0, 0, 101, 0, 0, 0, 0xe8, 0x03, 0, 0, 9, 0, 1, 0, 9, 0, 0, 0, 0, 0,
            0, 0, 32, 0, 0, 0,
        ];
        assert_eq!(&b[28..60], &idb);
        let units: u64 = 1_508_992_048_743_123_456;
        let epb1 = &b[60..96];
        assert_eq!(&epb1[0..12], &[6, 0, 0, 0, 36, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(&epb1[12..16], &((units >> 32) as u32).to_le_bytes());
        assert_eq!(&epb1[16..20], &(units as u32).to_le_bytes());
        assert_eq!(&epb1[28..32], &[1, 2, 3, 4]);
        // Second interface (Ethernet) defined just before its first packet.
        assert_eq!(&b[96..104], &[1, 0, 0, 0, 32, 0, 0, 0]);
        assert_eq!(&b[104..106], &[1, 0]);
        let epb2 = &b[128..];
        assert_eq!(&epb2[8..12], &[1, 0, 0, 0]);
        assert_eq!(epb2.len(), 36);
    }
}
