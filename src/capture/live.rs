//! Live capture from a network interface through libpcap (cargo feature `live`).
//!
//! The source hands packets to the same pipeline as files. It stops by itself after a packet
//! count or a duration, or when [`request_stop`] is called (the signal handlers installed by
//! [`install_stop_signals`] do so on SIGINT/SIGTERM): the read timeout is short, so a stop is
//! noticed within a fraction of a second even on a silent interface.

use std::ffi::CString;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use pcap::{Active, Capture, Device, Precision};

use super::{
    CaptureError, CaptureErrorKind, CaptureStats, LinkType, Packet, PacketSource, Timestamp,
};

/// Called with every packet of a live capture before the pipeline sees it.
pub type Tap = Box<dyn FnMut(&Packet<'_>) -> std::io::Result<()>>;

static STOP: AtomicBool = AtomicBool::new(false);

/// Asks every live source to stop at its next read.
pub fn request_stop() {
    STOP.store(true, Ordering::SeqCst);
}

extern "C" fn on_signal(_: libc::c_int) {
    // Only an atomic store: async-signal-safe.
    STOP.store(true, Ordering::SeqCst);
}

/// Installs SIGINT and SIGTERM handlers that stop live capture cleanly (output flushed, the
/// savefile closed, the final report printed) instead of killing the process.
pub fn install_stop_signals() {
    for sig in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: `on_signal` only performs an atomic store, which is async-signal-safe, and
        // the sigaction struct is fully initialised (zeroed, then the handler set) before use.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(sig, &sa, std::ptr::null_mut());
        }
    }
}

/// What to capture.
#[derive(Clone, Debug)]
pub struct LiveConfig {
    pub interface: String,
    /// A BPF capture filter, as for tcpdump.
    pub filter: Option<String>,
    pub snaplen: i32,
    /// The kernel's capture buffer, in KiB.
    pub buffer_kib: u32,
    pub promisc: bool,
    /// Stop after this many packets.
    pub count: Option<u64>,
    /// Stop after this long.
    pub duration: Option<Duration>,
}

/// libpcap's counters at the end of a capture.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LiveStats {
    pub received: u32,
    pub dropped_by_kernel: u32,
    pub dropped_by_interface: u32,
}

/// Packets from a network interface.
pub struct LiveSource {
    cap: Capture<Active>,
    link: LinkType,
    name: String,
    next_index: u64,
    remaining: Option<u64>,
    deadline: Option<Instant>,
    stats: CaptureStats,
    tap: Option<Tap>,
    tap_error: Option<std::io::Error>,
    buf: Vec<u8>,
    /// Set when a stop was asked for (signal or `--duration`): packets the kernel still holds
    /// are read until then.
    drain_until: Option<Instant>,
}

/// How long a stop keeps reading: a block is handed over within the read timeout of 100 ms,
/// so what arrived before the stop is read, and at most this much after it.
const DRAIN: Duration = Duration::from_millis(250);

fn live_error(iface: &str, msg: String) -> CaptureError {
    CaptureError { file: iface.to_string(), offset: 0, kind: CaptureErrorKind::Corrupt(msg) }
}

impl LiveSource {
    /// Opens the interface; errors say what to do (permissions, unknown interface with the
    /// list of known ones, the filter and libpcap's complaint about it).
    pub fn open(cfg: &LiveConfig) -> Result<LiveSource, CaptureError> {
        let iface = cfg.interface.as_str();
        let inactive = Capture::from_device(iface)
            .map_err(|e| live_error(iface, format!("cannot open interface: {e}")))?
            .promisc(cfg.promisc)
            .snaplen(cfg.snaplen)
            // Not immediate mode: on Linux that means one ring slot the size of the snaplen per
            // packet (eight slots in libpcap's default 2 MiB), so any burst while this process
            // was busy or asleep was dropped. Without it packets share blocks by their real
            // size, and a block is handed over when full or after the timeout: messages show
            // up to 100 ms late, none go missing.
            .timeout(100)
            .immediate_mode(false)
            .buffer_size(i32::try_from(u64::from(cfg.buffer_kib) * 1024).unwrap_or(i32::MAX))
            .precision(Precision::Nano);
        let cap = inactive
            .open()
            .map_err(|e| live_error(iface, explain_open_error(iface, &e.to_string())))?;
        // Non-blocking reads with a short sleep when idle: libpcap's read timeout is not
        // honoured by every capture mechanism, and a stop request must be seen promptly.
        let mut cap = cap
            .setnonblock()
            .map_err(|e| live_error(iface, format!("cannot set non-blocking mode: {e}")))?;
        if let Some(f) = &cfg.filter {
            cap.filter(f, true)
                .map_err(|e| live_error(iface, format!("invalid capture filter {f:?}: {e}")))?;
        }
        let link = LinkType(u32::try_from(cap.get_datalink().0).unwrap_or(u32::MAX));
        Ok(LiveSource {
            cap,
            link,
            name: iface.to_string(),
            next_index: 1,
            remaining: cfg.count,
            deadline: cfg.duration.map(|d| Instant::now() + d),
            stats: CaptureStats::default(),
            tap: None,
            tap_error: None,
            buf: Vec::with_capacity(65_536),
            drain_until: None,
        })
    }

    /// Calls `tap` with every packet before it is returned (e.g. to save it with `-w`). Its
    /// first error ends the capture and is returned by [`LiveSource::take_tap_error`].
    pub fn set_tap(&mut self, tap: Tap) {
        self.tap = Some(tap);
    }

    /// The interface's link-layer type.
    pub fn link_type(&self) -> LinkType {
        self.link
    }

    pub fn take_tap_error(&mut self) -> Option<std::io::Error> {
        self.tap_error.take()
    }

    /// libpcap's counters so far.
    pub fn live_stats(&mut self) -> LiveStats {
        match self.cap.stats() {
            Ok(s) => LiveStats {
                received: s.received,
                dropped_by_kernel: s.dropped,
                dropped_by_interface: s.if_dropped,
            },
            Err(_) => LiveStats::default(),
        }
    }

    /// Whether to stop now. A packet count or a failed tap stops at once; a signal or the
    /// duration first lets [`DRAIN`] pass, so that packets in a block the kernel has not handed
    /// over yet are not lost.
    fn should_stop(&mut self) -> bool {
        if self.remaining == Some(0) || self.tap_error.is_some() {
            return true;
        }
        let now = Instant::now();
        if STOP.load(Ordering::SeqCst) || self.deadline.is_some_and(|d| now >= d) {
            return now >= *self.drain_until.get_or_insert(now + DRAIN);
        }
        false
    }
}

fn explain_open_error(iface: &str, msg: &str) -> String {
    let lower = msg.to_ascii_lowercase();
    if lower.contains("permission") || lower.contains("not permitted") {
        return format!(
            "{msg}: capturing needs root, or capture rights on the binary: \
             sudo setcap cap_net_raw,cap_net_admin=eip \"$(command -v msyncdump)\""
        );
    }
    if lower.contains("no such device")
        || lower.contains("doesn't exist")
        || lower.contains("not exist")
    {
        let names: Vec<String> =
            Device::list().unwrap_or_default().into_iter().map(|d| d.name).collect();
        return format!("{msg}: no interface {iface:?}; available: {}", names.join(", "));
    }
    msg.to_string()
}

impl PacketSource for LiveSource {
    fn next_packet(&mut self) -> Result<Option<Packet<'_>>, CaptureError> {
        let (ts, orig_len) = loop {
            if self.should_stop() {
                return Ok(None);
            }
            match self.cap.next_packet() {
                Ok(p) => {
                    // Copied out of libpcap's buffer: returning the borrow from inside this
                    // retry loop is beyond the borrow checker, and a live interface is far
                    // slower than one copy per packet.
                    self.buf.clear();
                    self.buf.extend_from_slice(p.data);
                    let tv = p.header.ts;
                    // With nanosecond precision libpcap puts nanoseconds in tv_usec.
                    let nanos = u32::try_from(tv.tv_usec).unwrap_or(0).min(999_999_999);
                    // time_t is i64 here but i32 on some targets.
                    #[allow(clippy::useless_conversion)]
                    let secs = i64::from(tv.tv_sec);
                    break (Timestamp::from_secs_nanos(secs, nanos), p.header.len);
                }
                Err(pcap::Error::TimeoutExpired) => {
                    std::thread::sleep(Duration::from_millis(5));
                    continue;
                }
                Err(e) => return Err(live_error(&self.name, format!("capture failed: {e}"))),
            }
        };
        let index = self.next_index;
        self.next_index += 1;
        if let Some(n) = self.remaining.as_mut() {
            *n = n.saturating_sub(1);
        }
        self.stats.records += 1;
        self.stats.bytes += self.buf.len() as u64;
        let pkt = Packet { index, ts, link: self.link, orig_len, data: &self.buf, file_offset: 0 };
        if let Some(tap) = self.tap.as_mut() {
            if let Err(e) = tap(&pkt) {
                self.tap_error = Some(e);
            }
        }
        Ok(Some(pkt))
    }

    fn stats(&self) -> CaptureStats {
        self.stats
    }

    fn name(&self) -> &str {
        &self.name
    }

    fn set_next_index(&mut self, n: u64) {
        self.next_index = n;
    }
}

/// One line per interface with its addresses, like `tcpdump -D`.
pub fn list_interfaces() -> Result<Vec<String>, String> {
    let devices = Device::list().map_err(|e| e.to_string())?;
    Ok(devices
        .into_iter()
        .enumerate()
        .map(|(i, d)| {
            let mut line = format!("{}.{}", i + 1, d.name);
            if let Some(desc) = d.desc {
                line.push_str(&format!(" ({desc})"));
            }
            let addrs: Vec<String> = d.addresses.iter().map(|a| a.addr.to_string()).collect();
            if !addrs.is_empty() {
                line.push_str(&format!(" [{}]", addrs.join(", ")));
            }
            line
        })
        .collect())
}

/// Drops root privileges to `user` (after the interface is open), as tcpdump's `-Z` does.
pub fn drop_privileges(user: &str) -> Result<(), String> {
    let name = CString::new(user).map_err(|_| format!("bad user name {user:?}"))?;
    // SAFETY: getpwnam returns a pointer into static storage or null; it is read at once,
    // before any other call that could overwrite it, and `name` outlives the call.
    let (uid, gid) = unsafe {
        let pw = libc::getpwnam(name.as_ptr());
        if pw.is_null() {
            return Err(format!("no such user {user:?}"));
        }
        ((*pw).pw_uid, (*pw).pw_gid)
    };
    // SAFETY: plain system calls with valid arguments; their results are checked. Groups go
    // first, then the group id, then the user id: after setuid the others are not allowed.
    unsafe {
        if libc::initgroups(name.as_ptr(), gid) != 0 {
            return Err(format!("initgroups({user}): {}", std::io::Error::last_os_error()));
        }
        if libc::setgid(gid) != 0 {
            return Err(format!("setgid({gid}): {}", std::io::Error::last_os_error()));
        }
        if libc::setuid(uid) != 0 {
            return Err(format!("setuid({uid}): {}", std::io::Error::last_os_error()));
        }
    }
    Ok(())
}
