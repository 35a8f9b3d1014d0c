//! Link and network layer parsing down to a TCP segment view.
//!
//! Link headers (Ethernet with any number of 802.1Q/802.1ad tags up to [`MAX_VLAN_TAGS`], MPLS
//! labels and PPPoE sessions on Ethernet, Linux cooked v1/v2, BSD NULL/LOOP, raw IP, PPP, Cisco
//! HDLC, Apple's PKTAP) are a few fixed offsets and are read by hand; IP and TCP go through
//! etherparse's borrowed slice types (`LaxIpSlice`, `TcpSlice`), which accept IPv4 options and
//! IPv6 extension headers.
//!
//! Tunnels are opened, as Wireshark opens them by default, so that a capture taken on a cloud
//! host's underlay or delivered by traffic mirroring shows the MSync connections inside: IP in
//! IP (IPv4 or IPv6 in either), GRE (IP, transparent Ethernet bridging, ERSPAN types I–III),
//! VXLAN (UDP 4789 and Linux's 8472) and Geneve (UDP 6081). The connection is the innermost
//! TCP 4-tuple. At most [`MAX_ENCAP`] encapsulations are opened in one packet.
//!
//! Invariant: every function here is total over arbitrary bytes: it returns a [`Parsed`]
//! classification, never panics, and the returned slices borrow the input.

use etherparse::{IpNumber, LaxIpSlice, LenSource, TcpSlice};

use crate::capture::LinkType;

/// Deeper VLAN stacks than this are treated as malformed (crafted input, not real networks).
pub(crate) const MAX_VLAN_TAGS: usize = 8;

/// Encapsulations opened in one packet (a tunnel in a tunnel in …): real networks nest two
/// or three; a crafted packet could nest them without end.
pub(crate) const MAX_ENCAP: u32 = 4;

const ETH_IPV4: u16 = 0x0800;
const ETH_IPV6: u16 = 0x86dd;
/// Transparent Ethernet bridging: an Ethernet frame (GRE, Geneve).
const ETH_BRIDGED: u16 = 0x6558;
const ETH_ERSPAN_2: u16 = 0x88be;
const ETH_ERSPAN_3: u16 = 0x22eb;
const ETH_MPLS: u16 = 0x8847;
const ETH_MPLS_MULTICAST: u16 = 0x8848;
const ETH_PPPOE_SESSION: u16 = 0x8864;
/// PPP's protocol numbers for IPv4 and IPv6.
const PPP_IPV4: u16 = 0x0021;
const PPP_IPV6: u16 = 0x0057;
/// UDP ports of the UDP tunnels: VXLAN's (IANA's, and the Linux kernel's default), Geneve's.
const VXLAN_PORTS: [u16; 2] = [4789, 8472];
const GENEVE_PORT: u16 = 6081;

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
    /// The receive window the sender advertises (unscaled: only zero is read from it).
    pub window: u16,
    /// The payload bytes present in the capture.
    pub payload: &'a [u8],
    /// Payload bytes the IP header (or the record's original length) promises beyond
    /// `payload`: cut off by the snaplen.
    pub missing: u32,
}

/// An IPv4 or IPv6 fragment, to be reassembled before its TCP header can be read. An IPv4
/// address is in the first 4 bytes of `src`/`dst`, as in an [`Endpoint`].
#[derive(Clone, Copy, Debug)]
pub(crate) struct Fragment<'a> {
    pub src: [u8; 16],
    pub dst: [u8; 16],
    pub v6: bool,
    pub id: u32,
    /// The protocol of the reassembled payload (IPv6: the fragment header's next header).
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
    Fragment(Fragment<'a>),
    NonIp,
    NonTcp,
    Malformed,
    Unsupported,
}

pub(crate) fn link_supported(link: LinkType) -> bool {
    matches!(link.0, 0 | 1 | 9 | 12 | 14 | 50 | 101 | 104 | 108 | 113 | 228 | 229 | 239 | 258 | 276)
}

/// Type-length-value attributes walked in one NFLOG record before it is taken as crafted (the
/// kernel writes about ten).
const MAX_NFLOG_TLVS: usize = 64;

/// The packet of a Linux NFLOG record (`tcpdump -i nflog:N`): a 4-byte header (address family,
/// version, group), then attributes whose length and type are in the capturing host's byte
/// order, each padded to 4 bytes; the packet is attribute 9.
fn nflog_payload(data: &[u8]) -> Result<&[u8], Parsed<'_>> {
    let Some(&family) = data.first() else { return Err(Parsed::Malformed) };
    // AF_INET, AF_INET6 (Linux), or unspecified.
    if !matches!(family, 0 | 2 | 10) {
        return Err(Parsed::NonIp);
    }
    let mut at = 4;
    for _ in 0..MAX_NFLOG_TLVS {
        let Some(&[l0, l1, t0, t1]) = data.get(at..).and_then(|d| d.first_chunk::<4>()) else {
            break;
        };
        // Types are small numbers: whichever reading of the type is small gives the order.
        let le = u16::from_le_bytes([t0, t1]) & 0x7fff < 0x100;
        let (len, kind) = if le {
            (u16::from_le_bytes([l0, l1]), u16::from_le_bytes([t0, t1]) & 0x7fff)
        } else {
            (u16::from_be_bytes([l0, l1]), u16::from_be_bytes([t0, t1]) & 0x7fff)
        };
        let len = usize::from(len);
        if len < 4 {
            return Err(Parsed::Malformed);
        }
        if kind == NFULA_PAYLOAD {
            // A record the snaplen cut holds less than the attribute says.
            return Ok(data.get(at + 4..(at + len).min(data.len())).unwrap_or_default());
        }
        at += len.next_multiple_of(4);
    }
    Err(Parsed::NonIp)
}

const NFULA_PAYLOAD: u16 = 9;

#[inline]
fn be16(d: &[u8], at: usize) -> Option<u16> {
    let b = d.get(at..)?.first_chunk::<2>()?;
    Some(u16::from_be_bytes(*b))
}

/// Parses a captured frame. `orig_len` is the length on the wire.
pub(crate) fn parse(link: LinkType, data: &[u8], orig_len: u32) -> Parsed<'_> {
    // Bytes the snaplen cut from the end of the record; they belong to the innermost layer.
    let cut = (orig_len as usize).saturating_sub(data.len());
    parse_link(link, data, cut, 0)
}

fn parse_link(link: LinkType, data: &[u8], cut: usize, depth: u32) -> Parsed<'_> {
    let ip = match link.0 {
        1 => match ethernet(data) {
            Ok(ip) => ip,
            Err(p) => return p,
        },
        // PPP, with or without the HDLC-like address and control bytes (RFC 1662), and Cisco
        // HDLC (address, control, then an Ethernet type).
        9 | 50 => {
            let at = if data.starts_with(&[0xff, 0x03]) { 2 } else { 0 };
            match ppp_ip(be16(data, at), data.get(at + 2..)) {
                Ok(ip) => ip,
                Err(p) => return p,
            }
        }
        104 => match ethertype_ip(be16(data, 2).unwrap_or(0), data.get(4..)) {
            Ok(ip) => ip,
            Err(p) => return p,
        },
        // Apple's PKTAP (rvictl, `tcpdump -k`): a header of its own length (host order, which is
        // little-endian on every Apple machine), the kind of record (1: a packet) and the link
        // type of the packet after it.
        258 => {
            let (Some(len), Some(kind), Some(dlt)) = (le32(data, 0), le32(data, 4), le32(data, 8))
            else {
                return Parsed::Malformed;
            };
            let Some(inner) =
                usize::try_from(len).ok().filter(|&l| l >= 12).and_then(|l| data.get(l..))
            else {
                return Parsed::Malformed;
            };
            if kind != 1 {
                return Parsed::NonIp;
            }
            if dlt == 258 || depth >= MAX_ENCAP {
                return Parsed::Malformed;
            }
            return parse_link(LinkType(dlt), inner, cut, depth + 1);
        }
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
        239 => match nflog_payload(data) {
            Ok(ip) => ip,
            Err(p) => return p,
        },
        _ => return Parsed::Unsupported,
    };
    parse_ip_at(ip, cut, depth)
}

#[inline]
fn le32(d: &[u8], at: usize) -> Option<u32> {
    let b = d.get(at..)?.first_chunk::<4>()?;
    Some(u32::from_le_bytes(*b))
}

fn ppp_ip(proto: Option<u16>, rest: Option<&[u8]>) -> Result<&[u8], Parsed<'_>> {
    match (proto, rest) {
        (Some(PPP_IPV4 | PPP_IPV6), Some(r)) => Ok(r),
        (None, _) | (Some(PPP_IPV4 | PPP_IPV6), None) => Err(Parsed::Malformed),
        _ => Err(Parsed::NonIp),
    }
}

// Always in line: every Ethernet packet passes here, and the tunnels' calls would otherwise
// keep the usual one out of line.
#[inline(always)]
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
    match ethertype {
        ETH_MPLS | ETH_MPLS_MULTICAST => mpls(data.get(at..).unwrap_or_default()),
        ETH_PPPOE_SESSION => {
            // Version and type 0x11, code 0 (session data), session id, length; then PPP.
            if data.get(at) != Some(&0x11) {
                return Err(Parsed::Malformed);
            }
            ppp_ip(be16(data, at + 6), data.get(at + 8..))
        }
        _ => ethertype_ip(ethertype, data.get(at..)),
    }
}

/// The IP packet under an MPLS label stack: labels until the bottom-of-stack bit, then IPv4 or
/// IPv6 by the version nibble (a pseudowire's Ethernet is not guessed at).
fn mpls(mut d: &[u8]) -> Result<&[u8], Parsed<'_>> {
    for _ in 0..MAX_VLAN_TAGS {
        let Some((label, rest)) = d.split_first_chunk::<4>() else {
            return Err(Parsed::Malformed);
        };
        d = rest;
        if label[2] & 1 == 1 {
            return match d.first().map(|b| b >> 4) {
                Some(4 | 6) => Ok(d),
                Some(_) => Err(Parsed::NonIp),
                None => Err(Parsed::Malformed),
            };
        }
    }
    Err(Parsed::Malformed)
}

fn ethertype_ip(ethertype: u16, rest: Option<&[u8]>) -> Result<&[u8], Parsed<'_>> {
    match (ethertype, rest) {
        (ETH_IPV4 | ETH_IPV6, Some(r)) => Ok(r),
        (ETH_IPV4 | ETH_IPV6, None) => Err(Parsed::Malformed),
        _ => Err(Parsed::NonIp),
    }
}

/// Parses an IP packet; `cut` is how many bytes of the record the snaplen removed.
#[cfg(test)]
pub(crate) fn parse_ip(ip: &[u8], cut: usize) -> Parsed<'_> {
    parse_ip_at(ip, cut, 0)
}

/// [`parse_ip`] of a packet inside `depth` encapsulations.
fn parse_ip_at(ip: &[u8], cut: usize, depth: u32) -> Parsed<'_> {
    if let Some(p) = plain_ipv4(ip) {
        return p;
    }
    parse_ip_lax(ip, cut, depth)
}

/// What an IP payload of protocol `proto` carries, when it is not TCP: a tunnel's packet, opened
/// (see the module's documentation), or nothing for us. `cut` is what the snaplen removed from
/// its end.
pub(crate) fn ip_payload(proto: u8, payload: &[u8], cut: usize, depth: u32) -> Parsed<'_> {
    if depth >= MAX_ENCAP {
        return Parsed::NonTcp;
    }
    let depth = depth + 1;
    match proto {
        // IPv4 or IPv6 in IP: the version nibble tells which.
        4 | 41 => parse_ip_at(payload, cut, depth),
        47 => gre(payload, cut, depth),
        17 => udp_tunnel(payload, cut, depth),
        _ => Parsed::NonTcp,
    }
}

/// A GRE packet (RFC 2784, with RFC 2890's key and sequence number; version 0 only, so not
/// PPTP's).
fn gre(d: &[u8], cut: usize, depth: u32) -> Parsed<'_> {
    let (Some(flags), Some(proto)) = (be16(d, 0), be16(d, 2)) else {
        return Parsed::Malformed;
    };
    // Source routing (RFC 1701's R bit) and other versions are not followed.
    if flags & 0x4000 != 0 || flags & 0x0007 != 0 {
        return Parsed::NonTcp;
    }
    let (checksum, key, seq) = (flags & 0x8000 != 0, flags & 0x2000 != 0, flags & 0x1000 != 0);
    let at = 4 + 4 * (usize::from(checksum) + usize::from(key) + usize::from(seq));
    let Some(rest) = d.get(at..) else { return Parsed::Malformed };
    match proto {
        ETH_IPV4 | ETH_IPV6 => parse_ip_at(rest, cut, depth),
        ETH_BRIDGED => bridged(rest, cut, depth),
        // ERSPAN type II has an 8-byte header and a sequence number; type I has neither.
        ETH_ERSPAN_2 => match rest.get(if seq { 8 } else { 0 }..) {
            Some(frame) => bridged(frame, cut, depth),
            None => Parsed::Malformed,
        },
        // Type III: 12 bytes, and an 8-byte platform subheader when its O bit is set.
        ETH_ERSPAN_3 => {
            let Some(&last) = rest.get(11) else { return Parsed::Malformed };
            match rest.get(if last & 1 == 1 { 20 } else { 12 }..) {
                Some(frame) => bridged(frame, cut, depth),
                None => Parsed::Malformed,
            }
        }
        _ => Parsed::NonTcp,
    }
}

/// An Ethernet frame inside a tunnel.
fn bridged(frame: &[u8], cut: usize, depth: u32) -> Parsed<'_> {
    match ethernet(frame) {
        Ok(ip) => parse_ip_at(ip, cut, depth),
        Err(p) => p,
    }
}

/// A UDP datagram to a tunnel's port: VXLAN or Geneve carrying Ethernet (or, for Geneve, IP).
fn udp_tunnel(d: &[u8], cut: usize, depth: u32) -> Parsed<'_> {
    let (Some(dst), Some(body)) = (be16(d, 2), d.get(8..)) else {
        return Parsed::Malformed;
    };
    if VXLAN_PORTS.contains(&dst) {
        // Flags with the I bit (a valid network identifier), 3 reserved bytes, VNI, 1 reserved.
        return match (body.first(), body.get(8..)) {
            (Some(f), Some(frame)) if f & 0x08 != 0 => bridged(frame, cut, depth),
            (Some(_), Some(_)) => Parsed::NonTcp,
            _ => Parsed::Malformed,
        };
    }
    if dst == GENEVE_PORT {
        // Version (2 bits, 0) and options length in 4-byte words, flags, protocol type, VNI.
        let (Some(&first), Some(proto)) = (body.first(), be16(body, 2)) else {
            return Parsed::Malformed;
        };
        if first >> 6 != 0 {
            return Parsed::NonTcp;
        }
        let Some(inner) = body.get(8 + 4 * usize::from(first & 0x3f)..) else {
            return Parsed::Malformed;
        };
        return match proto {
            ETH_BRIDGED => bridged(inner, cut, depth),
            ETH_IPV4 | ETH_IPV6 => parse_ip_at(inner, cut, depth),
            _ => Parsed::NonTcp,
        };
    }
    Parsed::NonTcp
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

pub(crate) fn parse_ip_lax(ip: &[u8], cut: usize, depth: u32) -> Parsed<'_> {
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
        // A record the snaplen did not cut holds the whole packet: a header claiming more
        // is damaged (a flipped bit), and its bytes are all there. Believing it would declare
        // a gap of bytes that were never sent and lose the messages they cut.
        if cut == 0 {
            0
        } else {
            claimed_end.saturating_sub(ip.len())
        }
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
                return Parsed::Fragment(Fragment {
                    src: v4_in_16(h.source()),
                    dst: v4_in_16(h.destination()),
                    v6: false,
                    id: u32::from(h.identification()),
                    proto: pl.ip_number.0,
                    offset: u32::from(h.fragments_offset().value()) * 8,
                    more: h.more_fragments(),
                    data: pl.payload,
                    truncated: missing > 0,
                });
            }
            if pl.ip_number != IpNumber::TCP {
                return ip_payload(pl.ip_number.0, pl.payload, missing, depth);
            }
            parse_tcp_v4(pl.payload, h.source(), h.destination(), missing)
        }
        LaxIpSlice::Ipv6(v6) => {
            if pl.fragmented {
                let h = v6.header();
                let end = claimed_end.min(ip.len());
                return ipv6_fragment(ip, end, h.source(), h.destination(), missing > 0);
            }
            if pl.ip_number != IpNumber::TCP {
                return ip_payload(pl.ip_number.0, pl.payload, missing, depth);
            }
            let h = v6.header();
            parse_tcp(pl.payload, h.source(), h.destination(), true, missing)
        }
    }
}

/// Extension headers walked to an IPv6 fragment header; more are taken as crafted.
const MAX_IPV6_EXTENSIONS: usize = 8;

/// The fragment of IPv6 packet `ip` (whose payload ends at `end`), found by walking its
/// extension headers to the fragment header; what precedes that header is not part of the
/// reassembled payload.
fn ipv6_fragment(
    ip: &[u8],
    end: usize,
    src: [u8; 16],
    dst: [u8; 16],
    truncated: bool,
) -> Parsed<'_> {
    let Some(&first) = ip.get(6) else { return Parsed::Malformed };
    let (mut next, mut at) = (first, 40usize);
    for _ in 0..MAX_IPV6_EXTENSIONS {
        let Some(&[nh, len]) = ip.get(at..at + 2) else { return Parsed::Malformed };
        match next {
            // Hop-by-hop, routing, destination options: 8-byte units after the first 8.
            0 | 43 | 60 => at += (usize::from(len) + 1) * 8,
            // Authentication header: 4-byte units, less 2.
            51 => at += (usize::from(len) + 2) * 4,
            44 => {
                let id = ip.get(at + 4..).and_then(|b| b.first_chunk::<4>());
                let (Some(off_m), Some(&id)) = (be16(ip, at + 2), id) else {
                    return Parsed::Malformed;
                };
                let id = u32::from_be_bytes(id);
                let Some(data) = ip.get(at + 8..end.max(at + 8)) else {
                    return Parsed::Malformed;
                };
                return Parsed::Fragment(Fragment {
                    src,
                    dst,
                    v6: true,
                    id,
                    proto: nh,
                    offset: u32::from(off_m & 0xfff8),
                    more: off_m & 1 == 1,
                    data,
                    truncated,
                });
            }
            _ => return Parsed::Malformed,
        }
        next = nh;
    }
    Parsed::Malformed
}

fn v4_in_16(a: [u8; 4]) -> [u8; 16] {
    let mut x = [0u8; 16];
    x[..4].copy_from_slice(&a);
    x
}

/// [`parse_tcp`] for IPv4 addresses, which an [`Endpoint`] keeps in its first four bytes.
pub(crate) fn parse_tcp_v4(l4: &[u8], src: [u8; 4], dst: [u8; 4], missing: usize) -> Parsed<'_> {
    parse_tcp(l4, v4_in_16(src), v4_in_16(dst), false, missing)
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
        window: tcp.window_size(),
        payload: tcp.payload(),
        missing: u32::try_from(missing).unwrap_or(u32::MAX),
    })
}
