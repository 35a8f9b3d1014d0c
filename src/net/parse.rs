//! Link and network layer parsing down to a TCP segment view.
//!
//! Link headers (Ethernet with any number of 802.1Q/802.1ad tags up to [`MAX_VLAN_TAGS`], Linux
//! cooked v1/v2, BSD NULL/LOOP, raw IP) are a few fixed offsets and are read by hand; IP and TCP
//! go through etherparse's borrowed slice types (`LaxIpSlice`, `TcpSlice`), which accept IPv4
//! options and IPv6 extension headers.
//!
//! Invariant: every function here is total over arbitrary bytes: it returns a [`Parsed`]
//! classification, never panics, and the returned slices borrow the input.

use etherparse::{IpNumber, LaxIpSlice, LenSource, TcpSlice};

use crate::capture::LinkType;

/// Deeper VLAN stacks than this are treated as malformed (crafted input, not real networks).
pub(crate) const MAX_VLAN_TAGS: usize = 8;

const ETH_IPV4: u16 = 0x0800;
const ETH_IPV6: u16 = 0x86dd;

/// An address in a connection key: IPv4 is stored in the first 4 bytes with `v6 == false`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct Endpoint {
    pub ip: [u8; 16],
    pub v6: bool,
    pub port: u16,
}

impl Endpoint {
    pub fn socket_addr(&self) -> std::net::SocketAddr {
        let ip = if self.v6 {
            std::net::IpAddr::from(self.ip)
        } else {
            std::net::IpAddr::from([self.ip[0], self.ip[1], self.ip[2], self.ip[3]])
        };
        std::net::SocketAddr::new(ip, self.port)
    }
}

/// TCP flags we act on.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Flags {
    pub syn: bool,
    pub ack: bool,
    pub fin: bool,
    pub rst: bool,
}

/// One TCP segment as found in a packet.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Segment<'a> {
    pub src: Endpoint,
    pub dst: Endpoint,
    pub seq: u32,
    pub ack: u32,
    pub flags: Flags,
    /// The payload bytes present in the capture.
    pub payload: &'a [u8],
    /// Payload bytes the IP header (or the record's original length) promises beyond
    /// `payload`: cut off by the snaplen.
    pub missing: u32,
}

/// An IPv4 fragment, to be reassembled before its TCP header can be read.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Fragment<'a> {
    pub src: [u8; 4],
    pub dst: [u8; 4],
    pub id: u16,
    pub proto: u8,
    /// Byte offset of `data` in the datagram's payload.
    pub offset: u32,
    pub more: bool,
    pub data: &'a [u8],
    /// The fragment itself was cut by the snaplen: unusable for reassembly.
    pub truncated: bool,
}

#[derive(Debug)]
pub(crate) enum Parsed<'a> {
    Tcp(Segment<'a>),
    Ipv4Fragment(Fragment<'a>),
    Ipv6Fragment,
    NonIp,
    NonTcp,
    Malformed,
    Unsupported,
}

pub(crate) fn link_supported(link: LinkType) -> bool {
    matches!(link.0, 0 | 1 | 12 | 14 | 101 | 108 | 113 | 228 | 229 | 276)
}

#[inline]
fn be16(d: &[u8], at: usize) -> Option<u16> {
    let b = d.get(at..)?.first_chunk::<2>()?;
    Some(u16::from_be_bytes(*b))
}

/// Parses a captured frame. `orig_len` is the length on the wire.
pub(crate) fn parse(link: LinkType, data: &[u8], orig_len: u32) -> Parsed<'_> {
    // Bytes the snaplen cut from the end of the record; they belong to the innermost layer.
    let cut = (orig_len as usize).saturating_sub(data.len());
    let ip = match link.0 {
        1 => match ethernet(data) {
            Ok(ip) => ip,
            Err(p) => return p,
        },
        113 => {
            let Some(proto) = be16(data, 14) else {
                return Parsed::Malformed;
            };
            match ethertype_ip(proto, data.get(16..)) {
                Ok(ip) => ip,
                Err(p) => return p,
            }
        }
        276 => {
            let Some(proto) = be16(data, 0) else {
                return Parsed::Malformed;
            };
            match ethertype_ip(proto, data.get(20..)) {
                Ok(ip) => ip,
                Err(p) => return p,
            }
        }
        0 | 108 => {
            let Some(fam) = data.first_chunk::<4>() else {
                return Parsed::Malformed;
            };
            let be = u32::from_be_bytes(*fam);
            let le = u32::from_le_bytes(*fam);
            // NULL is in the capturing host's order, LOOP in network order; the family is a
            // small number, so whichever reading is small is the right one.
            let family = if link.0 == 108 || be < 256 { be } else { le };
            let rest = data.get(4..).unwrap_or(&[]);
            match family {
                2 => rest,
                // AF_INET6 differs per BSD: 24 NetBSD/OpenBSD, 28 FreeBSD, 30 Darwin; 10 Linux.
                10 | 24 | 28 | 30 => rest,
                _ => return Parsed::NonIp,
            }
        }
        12 | 14 | 101 | 228 | 229 => data,
        _ => return Parsed::Unsupported,
    };
    parse_ip(ip, cut)
}

fn ethernet(data: &[u8]) -> Result<&[u8], Parsed<'_>> {
    let Some(mut ethertype) = be16(data, 12) else {
        return Err(Parsed::Malformed);
    };
    let mut at = 14usize;
    let mut tags = 0;
    // 802.1Q, 802.1ad and the pre-standard QinQ types all carry a 4-byte tag.
    while matches!(ethertype, 0x8100 | 0x88a8 | 0x9100 | 0x9200) {
        tags += 1;
        if tags > MAX_VLAN_TAGS {
            return Err(Parsed::Malformed);
        }
        let Some(next) = be16(data, at + 2) else {
            return Err(Parsed::Malformed);
        };
        ethertype = next;
        at += 4;
    }
    ethertype_ip(ethertype, data.get(at..))
}

fn ethertype_ip(ethertype: u16, rest: Option<&[u8]>) -> Result<&[u8], Parsed<'_>> {
    match (ethertype, rest) {
        (ETH_IPV4 | ETH_IPV6, Some(r)) => Ok(r),
        (ETH_IPV4 | ETH_IPV6, None) => Err(Parsed::Malformed),
        _ => Err(Parsed::NonIp),
    }
}

/// Parses an IP packet; `cut` is how many bytes of the record the snaplen removed.
pub(crate) fn parse_ip(ip: &[u8], cut: usize) -> Parsed<'_> {
    if let Some(p) = plain_ipv4(ip) {
        return p;
    }
    parse_ip_lax(ip, cut)
}

/// The common packet without etherparse: IPv4 with no options, not a fragment, carrying TCP,
/// wholly inside the capture (its total length within the bytes, Ethernet padding after it).
/// `None` sends everything else to [`parse_ip_lax`], which answers the same for these.
#[inline]
fn plain_ipv4(ip: &[u8]) -> Option<Parsed<'_>> {
    let h = ip.first_chunk::<20>()?;
    let total = usize::from(u16::from_be_bytes([h[2], h[3]]));
    // Version 4, IHL 5; no MF flag and offset 0 (DF may be set); protocol 6.
    if h[0] != 0x45 || h[6] & 0x3f != 0 || h[7] != 0 || h[9] != 6 || total < 20 {
        return None;
    }
    let l4 = ip.get(20..total)?;
    let src = [h[12], h[13], h[14], h[15]];
    let dst = [h[16], h[17], h[18], h[19]];
    Some(parse_tcp_v4(l4, src, dst, 0))
}

pub(crate) fn parse_ip_lax(ip: &[u8], cut: usize) -> Parsed<'_> {
    let Ok((slice, ext_err)) = LaxIpSlice::from_slice(ip) else {
        return Parsed::Malformed;
    };
    if ext_err.is_some() {
        return Parsed::Malformed;
    }
    let pl = slice.payload();
    // What the IP header promised beyond the captured bytes.
    let claimed_end = match &slice {
        LaxIpSlice::Ipv4(v4) => usize::from(v4.header().total_len()),
        LaxIpSlice::Ipv6(v6) => 40 + usize::from(v6.header().payload_length()),
    };
    let missing = if pl.incomplete {
        claimed_end.saturating_sub(ip.len())
    } else if pl.len_source == LenSource::Slice {
        // No usable length in the header (e.g. 0 from segmentation offload): trust the record.
        cut
    } else {
        0
    };
    match &slice {
        LaxIpSlice::Ipv4(v4) => {
            let h = v4.header();
            if pl.fragmented {
                return Parsed::Ipv4Fragment(Fragment {
                    src: h.source(),
                    dst: h.destination(),
                    id: h.identification(),
                    proto: pl.ip_number.0,
                    offset: u32::from(h.fragments_offset().value()) * 8,
                    more: h.more_fragments(),
                    data: pl.payload,
                    truncated: missing > 0,
                });
            }
            if pl.ip_number != IpNumber::TCP {
                return Parsed::NonTcp;
            }
            parse_tcp_v4(pl.payload, h.source(), h.destination(), missing)
        }
        LaxIpSlice::Ipv6(v6) => {
            if pl.fragmented {
                return Parsed::Ipv6Fragment;
            }
            if pl.ip_number != IpNumber::TCP {
                return Parsed::NonTcp;
            }
            let h = v6.header();
            parse_tcp(pl.payload, h.source(), h.destination(), true, missing)
        }
    }
}

/// [`parse_tcp`] for IPv4 addresses, which an [`Endpoint`] keeps in its first four bytes.
pub(crate) fn parse_tcp_v4(l4: &[u8], src: [u8; 4], dst: [u8; 4], missing: usize) -> Parsed<'_> {
    let mut s = [0u8; 16];
    s[..4].copy_from_slice(&src);
    let mut d = [0u8; 16];
    d[..4].copy_from_slice(&dst);
    parse_tcp(l4, s, d, false, missing)
}

/// Parses a TCP header and payload (from a packet or a reassembled datagram).
pub(crate) fn parse_tcp(
    l4: &[u8],
    src: [u8; 16],
    dst: [u8; 16],
    v6: bool,
    missing: usize,
) -> Parsed<'_> {
    let Ok(tcp) = TcpSlice::from_slice(l4) else {
        return Parsed::Malformed;
    };
    Parsed::Tcp(Segment {
        src: Endpoint { ip: src, v6, port: tcp.source_port() },
        dst: Endpoint { ip: dst, v6, port: tcp.destination_port() },
        seq: tcp.sequence_number(),
        ack: tcp.acknowledgment_number(),
        flags: Flags { syn: tcp.syn(), ack: tcp.ack(), fin: tcp.fin(), rst: tcp.rst() },
        payload: tcp.payload(),
        missing: u32::try_from(missing).unwrap_or(u32::MAX),
    })
}
