//! Civil (calendar) time of capture timestamps, for every rendering: UTC, a fixed offset the
//! user gives, or the machine's zone read from its TZif file (no time-zone database is
//! bundled).

use std::fmt::{self, Write as _};

use crate::capture::Timestamp;

/// A broken-down time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Civil {
    pub year: i64,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
    pub nanos: u32,
}

impl Civil {
    /// `ts` shifted by `offset_secs` (0 for UTC).
    pub fn new(ts: Timestamp, offset_secs: i32) -> Civil {
        let secs = ts.secs().saturating_add(i64::from(offset_secs));
        let days = secs.div_euclid(86_400);
        let rem = secs.rem_euclid(86_400);
        let (year, month, day) = civil_from_days(days);
        // rem is in 0..86400, so these fit u32.
        Civil {
            year,
            month,
            day,
            hour: (rem / 3600) as u32,
            minute: (rem % 3600 / 60) as u32,
            second: (rem % 60) as u32,
            nanos: ts.subsec_nanos(),
        }
    }
}

/// Days since 1970-01-01 → (year, month, day) in the proleptic Gregorian calendar
/// (H. Hinnant's algorithm).
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// (year, month, day) → days since 1970-01-01; the inverse of [`Civil::new`]'s date part.
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// RFC 3339 in UTC: `2017-10-26T12:29:16.302000Z`, microseconds, or nanoseconds when the
/// capture has them.
pub struct Rfc3339(pub Timestamp);

impl fmt::Display for Rfc3339 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = Civil::new(self.0, 0);
        // Written digit by digit into one buffer: this runs once per message of `--json`, where
        // the padded `write!` form cost as much as a tenth of the rendering. Years outside
        // 0..=9999 take the general form.
        if let Ok(year @ 0..=9999) = u32::try_from(c.year) {
            let mut b = *b"0000-00-00T00:00:00.000000000Z";
            let digits = |b: &mut [u8], mut v: u32| {
                for d in b.iter_mut().rev() {
                    // `v % 10` is a digit, so the cast cannot truncate.
                    *d = b'0' + (v % 10) as u8;
                    v /= 10;
                }
            };
            digits(&mut b[0..4], year);
            digits(&mut b[5..7], c.month);
            digits(&mut b[8..10], c.day);
            digits(&mut b[11..13], c.hour);
            digits(&mut b[14..16], c.minute);
            digits(&mut b[17..19], c.second);
            let len = if c.nanos % 1000 == 0 {
                digits(&mut b[20..26], c.nanos / 1000);
                b[26] = b'Z';
                27
            } else {
                digits(&mut b[20..29], c.nanos);
                30
            };
            // Only ASCII was written.
            return f.write_str(
                std::str::from_utf8(b.get(..len).unwrap_or_default()).unwrap_or_default(),
            );
        }
        write!(
            f,
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.",
            c.year, c.month, c.day, c.hour, c.minute, c.second
        )?;
        if c.nanos % 1000 == 0 {
            write!(f, "{:06}Z", c.nanos / 1000)
        } else {
            write!(f, "{:09}Z", c.nanos)
        }
    }
}

/// `2017-10-26 12:29:16.302000` in UTC or at a fixed offset (then followed by `+08:00`).
pub fn write_human(out: &mut String, ts: Timestamp, offset_secs: Option<i32>) {
    let c = Civil::new(ts, offset_secs.unwrap_or(0));
    let _ = write!(
        out,
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}.{:06}",
        c.year,
        c.month,
        c.day,
        c.hour,
        c.minute,
        c.second,
        c.nanos / 1000
    );
    match offset_secs {
        None => out.push_str(" UTC"),
        Some(o) => {
            let sign = if o < 0 { '-' } else { '+' };
            let a = o.unsigned_abs();
            let _ = write!(out, " {sign}{:02}:{:02}", a / 3600, a % 3600 / 60);
        }
    }
}

/// A UTC offset as the user writes it (`+08:00`, `-0530`, `+8`, `UTC`), in seconds.
pub fn parse_utc_offset(s: &str) -> Result<i32, String> {
    let s = s.trim();
    if s.eq_ignore_ascii_case("z") || s.eq_ignore_ascii_case("utc") {
        return Ok(0);
    }
    let (sign, rest) = match s.as_bytes().first() {
        Some(b'+') => (1, &s[1..]),
        Some(b'-') => (-1, &s[1..]),
        _ => return Err(format!("bad UTC offset {s:?}: expected +HH:MM or -HH:MM")),
    };
    let (h, m) = match rest.split_once(':') {
        Some((h, m)) => (h, m),
        None if rest.len() == 4 => rest.split_at(2),
        None => (rest, "0"),
    };
    let h: i32 = h.parse().map_err(|_| format!("bad UTC offset {s:?}"))?;
    let m: i32 = m.parse().map_err(|_| format!("bad UTC offset {s:?}"))?;
    if !(0..=18).contains(&h) || !(0..60).contains(&m) {
        return Err(format!("UTC offset {s:?} out of range"));
    }
    Ok(sign * (h * 3600 + m * 60))
}

/// Where absolute times are shown: UTC, a fixed offset, or the machine's local zone.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Zone {
    #[default]
    Utc,
    Fixed(i32),
    /// Transitions of the local zone (from `/etc/localtime`): (from this time in seconds, the
    /// offset in seconds), sorted; before the first, `initial`; after the last, `rule` when the
    /// file has one (a "slim" TZif file lists no transition that the rule gives).
    Local {
        initial: i32,
        transitions: Vec<(i64, i32)>,
        rule: Option<TzRule>,
    },
}

/// The POSIX TZ rule of a TZif footer (RFC 8536, section 3.3): `CET-1CEST,M3.5.0,M10.5.0/3`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TzRule {
    /// Standard time's offset east of UTC, in seconds.
    std: i32,
    dst: Option<DstRule>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct DstRule {
    /// Summer time's offset east of UTC, in seconds.
    offset: i32,
    /// When it starts, in standard time, and ends, in summer time: the day, and the seconds
    /// after that day's midnight (may be negative or past 24 hours).
    start: (RuleDay, i32),
    end: (RuleDay, i32),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum RuleDay {
    /// `Jn`: day 1..=365, February 29 never counted.
    NoLeap(u16),
    /// `n`: day 0..=365, February 29 counted.
    Leap(u16),
    /// `Mm.w.d`: weekday `d` (0 = Sunday) of week `w` (5 = the last) of month `m`.
    Month { m: u32, w: u32, d: u32 },
}

impl RuleDay {
    /// The day of year `y`, in days since 1970-01-01.
    fn day(self, y: i64) -> i64 {
        let jan1 = days_from_civil(y, 1, 1);
        let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
        match self {
            RuleDay::NoLeap(n) => jan1 + i64::from(n) - 1 + i64::from(leap && n >= 60),
            RuleDay::Leap(n) => jan1 + i64::from(n),
            RuleDay::Month { m, w, d } => {
                let first = days_from_civil(y, m, 1);
                let (ny, nm) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
                let next = days_from_civil(ny, nm, 1);
                // 1970-01-01 was a Thursday (4).
                let mut day =
                    first + (i64::from(d) - (first + 4)).rem_euclid(7) + 7 * (i64::from(w) - 1);
                while day >= next {
                    day -= 7;
                }
                day
            }
        }
    }
}

impl TzRule {
    fn offset_at(&self, t: i64) -> i32 {
        let Some(dst) = self.dst else { return self.std };
        let year = Civil::new(Timestamp::from_secs_nanos(t, 0), self.std).year;
        let at = |(day, secs): (RuleDay, i32), off: i32| {
            day.day(year) * 86_400 + i64::from(secs) - i64::from(off)
        };
        let (start, end) = (at(dst.start, self.std), at(dst.end, dst.offset));
        let summer = if start < end {
            (start..end).contains(&t)
        } else {
            // The southern hemisphere: summer spans the new year.
            !(end..start).contains(&t)
        };
        if summer {
            dst.offset
        } else {
            self.std
        }
    }

    /// Parses a POSIX TZ string. None for forms a TZif footer does not hold (e.g. summer time
    /// without its rule), which then leave the last transition's offset in force.
    pub fn parse(s: &str) -> Option<TzRule> {
        let mut r = s.as_bytes();
        fn name(r: &mut &[u8]) -> Option<()> {
            let n = if r.first() == Some(&b'<') {
                r.iter().position(|&c| c == b'>')? + 1
            } else {
                r.iter().take_while(|c| c.is_ascii_alphabetic()).count()
            };
            (n >= 3).then(|| *r = r.get(n..).unwrap_or_default())
        }
        // `[+-]h[h][:mm[:ss]]` in seconds; hours up to 167 (RFC 8536's extension for the
        // times of rules).
        fn hms(r: &mut &[u8]) -> Option<i32> {
            let neg = r.first() == Some(&b'-');
            if matches!(r.first(), Some(b'-' | b'+')) {
                *r = r.get(1..)?;
            }
            let mut secs = 0;
            for (i, (max, unit)) in [(167, 3600), (59, 60), (59, 1)].into_iter().enumerate() {
                if i > 0 {
                    match r.strip_prefix(b":") {
                        Some(rest) => *r = rest,
                        None => break,
                    }
                }
                let v = number(r)?;
                if v > max {
                    return None;
                }
                secs += i32::try_from(v).ok()? * unit;
            }
            Some(if neg { -secs } else { secs })
        }
        // Up to three digits.
        fn number(r: &mut &[u8]) -> Option<u32> {
            let n = r.iter().take(3).take_while(|c| c.is_ascii_digit()).count();
            let v = std::str::from_utf8(r.get(..n)?).ok()?.parse().ok()?;
            *r = r.get(n..)?;
            Some(v)
        }
        fn when(r: &mut &[u8]) -> Option<(RuleDay, i32)> {
            *r = r.strip_prefix(b",")?;
            let day = match r.first()? {
                b'J' => {
                    *r = r.get(1..)?;
                    let n = number(r)?;
                    u16::try_from(n).ok().filter(|n| (1..=365).contains(n)).map(RuleDay::NoLeap)?
                }
                b'M' => {
                    *r = r.get(1..)?;
                    let m = number(r)?;
                    *r = r.strip_prefix(b".")?;
                    let w = number(r)?;
                    *r = r.strip_prefix(b".")?;
                    let d = number(r)?;
                    ((1..=12).contains(&m) && (1..=5).contains(&w) && d <= 6)
                        .then_some(RuleDay::Month { m, w, d })?
                }
                _ => {
                    let n = number(r)?;
                    u16::try_from(n).ok().filter(|&n| n <= 365).map(RuleDay::Leap)?
                }
            };
            let secs = match r.strip_prefix(b"/") {
                Some(rest) => {
                    *r = rest;
                    hms(r)?
                }
                None => 7200,
            };
            Some((day, secs))
        }
        name(&mut r)?;
        // POSIX offsets are west of UTC: `CET-1` is an hour east.
        let std = -hms(&mut r)?;
        if r.is_empty() {
            return Some(TzRule { std, dst: None });
        }
        name(&mut r)?;
        let offset = if r.first().is_some_and(|c| c.is_ascii_digit() || matches!(c, b'+' | b'-')) {
            -hms(&mut r)?
        } else {
            std + 3600
        };
        let start = when(&mut r)?;
        let end = when(&mut r)?;
        r.is_empty().then_some(TzRule { std, dst: Some(DstRule { offset, start, end }) })
    }
}

impl Zone {
    /// The offset in force at `ts`, or None for UTC (printed as "UTC", not "+00:00").
    pub fn offset_at(&self, ts: Timestamp) -> Option<i32> {
        match self {
            Zone::Utc => None,
            Zone::Fixed(o) => Some(*o),
            Zone::Local { initial, transitions, rule } => {
                let t = ts.secs();
                let i = transitions.partition_point(|&(at, _)| at <= t);
                Some(match (i.checked_sub(1).and_then(|j| transitions.get(j)), rule) {
                    (_, Some(r)) if i == transitions.len() => r.offset_at(t),
                    (Some(&(_, o)), _) => o,
                    (None, _) => *initial,
                })
            }
        }
    }

    /// The offset in force when the zone's clocks show `wall` (a wall-clock time written as if
    /// it were UTC), or None for UTC. A time that a transition skips or shows twice takes the
    /// offset of one side of it.
    pub fn offset_at_wall(&self, wall: Timestamp) -> Option<i32> {
        let guess = self.offset_at(wall)?;
        self.offset_at(Timestamp(wall.0.saturating_sub(i64::from(guess) * 1_000_000_000)))
    }

    /// The machine's local zone, from the TZif file `/etc/localtime`, or as `$TZ` names it: a
    /// file (absolute, or under /usr/share/zoneinfo) or a POSIX TZ rule (`CST-8`,
    /// `EST5EDT,M3.2.0,M11.1.0`). Falls back to UTC with a reason.
    pub fn local() -> Result<Zone, String> {
        let path = match std::env::var("TZ") {
            Ok(tz) if !tz.is_empty() => {
                let name = tz.trim_start_matches(':');
                let path = if name.starts_with('/') {
                    name.to_string()
                } else {
                    format!("/usr/share/zoneinfo/{name}")
                };
                if let (false, Some(rule)) =
                    (std::path::Path::new(&path).exists(), TzRule::parse(name))
                {
                    return Ok(Zone::Local {
                        initial: rule.std,
                        transitions: Vec::new(),
                        rule: Some(rule),
                    });
                }
                path
            }
            _ => "/etc/localtime".to_string(),
        };
        let bytes = std::fs::read(&path).map_err(|e| format!("{path}: {e}"))?;
        parse_tzif(&bytes).ok_or_else(|| format!("{path}: not a TZif time-zone file"))
    }
}

/// Parses a TZif file (RFC 8536), preferring the 64-bit data of version 2 and later, whose
/// footer gives the rule for times after the last transition (without one, the last offset
/// holds).
pub fn parse_tzif(b: &[u8]) -> Option<Zone> {
    struct Header {
        isut: usize,
        isstd: usize,
        leap: usize,
        time: usize,
        types: usize,
        chars: usize,
    }
    fn header(b: &[u8]) -> Option<(u8, Header)> {
        if b.get(..4)? != b"TZif" {
            return None;
        }
        let n = |i: usize| -> Option<usize> {
            let w = b.get(20 + 4 * i..)?.first_chunk::<4>()?;
            usize::try_from(u32::from_be_bytes(*w)).ok()
        };
        let h = Header {
            isut: n(0)?,
            isstd: n(1)?,
            leap: n(2)?,
            time: n(3)?,
            types: n(4)?,
            chars: n(5)?,
        };
        Some((*b.get(4)?, h))
    }
    fn body_len(h: &Header, tsize: usize) -> Option<usize> {
        let t = h.time.checked_mul(tsize + 1)?;
        let ty = h.types.checked_mul(6)?;
        let leap = h.leap.checked_mul(tsize + 4)?;
        t.checked_add(ty)?
            .checked_add(h.chars)?
            .checked_add(leap)?
            .checked_add(h.isstd)?
            .checked_add(h.isut)
    }
    let (version, h1) = header(b)?;
    let (data, h, tsize) = if version >= b'2' {
        let skip = 44usize.checked_add(body_len(&h1, 4)?)?;
        let rest = b.get(skip..)?;
        let (_, h2) = header(rest)?;
        (rest.get(44..)?, h2, 8usize)
    } else {
        (b.get(44..)?, h1, 4usize)
    };
    let times = data.get(..h.time.checked_mul(tsize)?)?;
    let idx = data.get(times.len()..times.len().checked_add(h.time)?)?;
    let ttinfo_at = times.len() + idx.len();
    let ttinfo = data.get(ttinfo_at..ttinfo_at.checked_add(h.types.checked_mul(6)?)?)?;
    let offset_of = |t: usize| -> Option<i32> {
        let e = ttinfo.get(t.checked_mul(6)?..)?.first_chunk::<4>()?;
        Some(i32::from_be_bytes(*e))
    };
    let mut transitions = Vec::with_capacity(h.time);
    for i in 0..h.time {
        let at = if tsize == 8 {
            let w = times.get(i * 8..)?.first_chunk::<8>()?;
            i64::from_be_bytes(*w)
        } else {
            let w = times.get(i * 4..)?.first_chunk::<4>()?;
            i64::from(i32::from_be_bytes(*w))
        };
        transitions.push((at, offset_of(usize::from(*idx.get(i)?))?));
    }
    let initial = offset_of(0)?;
    // Version 2 and later end with the rule for times after the last transition, `\nTZ\n`.
    let rule = (tsize == 8)
        .then(|| data.get(body_len(&h, 8)?..))
        .flatten()
        .and_then(|f| f.strip_prefix(b"\n"))
        .and_then(|f| f.split(|&c| c == b'\n').next())
        .and_then(|f| TzRule::parse(std::str::from_utf8(f).ok()?));
    if transitions.is_empty()
        && rule.is_none_or(|r| r == TzRule { std: 0, dst: None })
        && initial == 0
    {
        return Some(Zone::Utc);
    }
    Some(Zone::Local { initial, transitions, rule })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_matches_the_padded_format() {
        let general = |ts: Timestamp| {
            let c = Civil::new(ts, 0);
            let frac = if c.nanos % 1000 == 0 {
                format!("{:06}", c.nanos / 1000)
            } else {
                format!("{:09}", c.nanos)
            };
            format!(
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{frac}Z",
                c.year, c.month, c.day, c.hour, c.minute, c.second
            )
        };
        let mut x = 0x2545_F491_4F6C_DD1Du64;
        let mut values = vec![0i64, -1, 1, 999, 1000, i64::MIN, i64::MAX, 253_402_300_799_999_999];
        for _ in 0..100_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            values.push(x as i64);
            values.push((x % 4_000_000_000_000_000_000) as i64 / 1000 * 1000);
        }
        for v in values {
            assert_eq!(Rfc3339(Timestamp(v)).to_string(), general(Timestamp(v)), "{v}");
        }
    }

    #[test]
    fn formats_the_seed_time() {
        let ts = Timestamp(
            days_from_civil(2017, 10, 26) * 86_400_000_000_000
                + ((12 * 3600 + 29 * 60 + 16) * 1_000_000_000 + 302_000_000),
        );
        assert_eq!(Rfc3339(ts).to_string(), "2017-10-26T12:29:16.302000Z");
        let mut s = String::new();
        write_human(&mut s, ts, Some(8 * 3600));
        assert_eq!(s, "2017-10-26 20:29:16.302000 +08:00");
        assert_eq!(Rfc3339(Timestamp(-1)).to_string(), "1969-12-31T23:59:59.999999999Z");
    }

    #[test]
    fn civil_round_trips() {
        for days in (-100_000..100_000).step_by(97) {
            let c = Civil::new(Timestamp(days * 86_400_000_000_000), 0);
            assert_eq!(days_from_civil(c.year, c.month, c.day), days);
        }
    }

    #[test]
    fn tzif_parses_and_never_panics() {
        // A version-1 file: one transition at t=1000 to the second type (+08:00).
        let mut b = b"TZif".to_vec();
        b.push(0);
        b.extend_from_slice(&[0; 15]);
        for n in [0u32, 0, 0, 1, 2, 4] {
            b.extend_from_slice(&n.to_be_bytes());
        }
        b.extend_from_slice(&1000i32.to_be_bytes());
        b.push(1);
        b.extend_from_slice(&0i32.to_be_bytes());
        b.extend_from_slice(&[0, 0]);
        b.extend_from_slice(&28_800i32.to_be_bytes());
        b.extend_from_slice(&[0, 0]);
        b.extend_from_slice(b"UTC\0");
        let z = parse_tzif(&b).unwrap_or_default();
        assert_eq!(z.offset_at(Timestamp::from_secs_nanos(999, 0)), Some(0));
        assert_eq!(z.offset_at(Timestamp::from_secs_nanos(1000, 0)), Some(28_800));
        for len in 0..b.len() {
            let _ = parse_tzif(&b[..len]);
        }
        if let Ok(bytes) = std::fs::read("/etc/localtime") {
            assert!(parse_tzif(&bytes).is_some());
        }
    }

    fn zone_file(name: &str) -> Zone {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data").join(name);
        parse_tzif(&std::fs::read(path).unwrap_or_default()).unwrap_or_default()
    }

    #[test]
    fn slim_zone_files_follow_their_rule() {
        let at = |z: &Zone, y: i64, m: u32, d: u32, secs: i64| {
            z.offset_at(Timestamp::from_secs_nanos(days_from_civil(y, m, d) * 86_400 + secs, 0))
        };
        // Files that list only the first transition (zic -b slim): the rest is the footer's.
        let berlin = zone_file("slim-Berlin.tzif");
        assert!(
            matches!(&berlin, Zone::Local { transitions, rule: Some(_), .. } if transitions.len() == 1)
        );
        // Summer time 2026: from 03-29 01:00 UTC to 10-25 01:00 UTC.
        assert_eq!(at(&berlin, 2026, 3, 29, 3599), Some(3600));
        assert_eq!(at(&berlin, 2026, 3, 29, 3600), Some(7200));
        assert_eq!(at(&berlin, 2026, 10, 25, 3599), Some(7200));
        assert_eq!(at(&berlin, 2026, 10, 25, 3600), Some(3600));
        assert_eq!(at(&berlin, 2026, 12, 8, 0), Some(3600));
        // The southern hemisphere: summer spans the new year; it ends 2026-04-05 03:00 local
        // (04-04 16:00 UTC) and starts 2026-10-04 02:00 local (10-03 16:00 UTC).
        let sydney = zone_file("slim-Sydney.tzif");
        assert_eq!(at(&sydney, 2026, 1, 1, 0), Some(39_600));
        assert_eq!(at(&sydney, 2026, 4, 4, 16 * 3600 - 1), Some(39_600));
        assert_eq!(at(&sydney, 2026, 4, 4, 16 * 3600), Some(36_000));
        assert_eq!(at(&sydney, 2026, 10, 3, 16 * 3600 - 1), Some(36_000));
        assert_eq!(at(&sydney, 2026, 10, 3, 16 * 3600), Some(39_600));
        // Every half hour of three decades, against the full files of the same zones.
        for (slim, full, from) in [
            ("slim-Berlin.tzif", "Europe-Berlin.tzif", 1997),
            ("slim-Sydney.tzif", "Australia-Sydney.tzif", 2009),
            ("slim-New_York.tzif", "America-New_York.tzif", 2008),
        ] {
            let (s, f) = (zone_file(slim), zone_file(full));
            let mut t = days_from_civil(from, 1, 1) * 86_400;
            while t < days_from_civil(2037, 1, 1) * 86_400 {
                let ts = Timestamp::from_secs_nanos(t, 0);
                assert_eq!(s.offset_at(ts), f.offset_at(ts), "{slim} at {t}");
                t += 1800;
            }
        }
    }

    #[test]
    fn tz_rules_parse() {
        let r = |s: &str| TzRule::parse(s);
        assert_eq!(r("CST-8"), Some(TzRule { std: 28_800, dst: None }));
        assert_eq!(r("<+0530>-5:30"), Some(TzRule { std: 19_800, dst: None }));
        assert_eq!(r("<-03>3"), Some(TzRule { std: -10_800, dst: None }));
        let ny = r("EST5EDT,M3.2.0,M11.1.0").and_then(|t| t.dst);
        assert_eq!(ny.map(|d| (d.offset, d.start.1, d.end.1)), Some((-4 * 3600, 7200, 7200)));
        let j = r("XXX3YYY2,J60/-1:30,300/167").and_then(|t| t.dst);
        assert_eq!(
            j.map(|d| (d.offset, d.start, d.end)),
            Some((-7200, (RuleDay::NoLeap(60), -5400), (RuleDay::Leap(300), 167 * 3600)))
        );
        // 2024 is a leap year: J60 is March 1, day 60 (from 0) is March 1 too.
        assert_eq!(RuleDay::NoLeap(60).day(2024), days_from_civil(2024, 3, 1));
        assert_eq!(RuleDay::Leap(60).day(2024), days_from_civil(2024, 3, 1));
        assert_eq!(RuleDay::Leap(60).day(2023), days_from_civil(2023, 3, 2));
        // The last Sunday of October 2026 is the 25th; the first, the 4th.
        assert_eq!(RuleDay::Month { m: 10, w: 5, d: 0 }.day(2026), days_from_civil(2026, 10, 25));
        assert_eq!(RuleDay::Month { m: 10, w: 1, d: 0 }.day(2026), days_from_civil(2026, 10, 4));
        for bad in [
            "",
            "CE-1",
            "CET",
            "CET-1CEST",
            "CET-1CEST,M13.1.0,M10.5.0",
            "CET-1CEST,M3.5.0",
            "CET-200",
            "CET-1CEST,J0,J5",
            "CET-1 ",
        ] {
            assert_eq!(r(bad), None, "{bad}");
        }
    }

    #[test]
    fn offsets_parse() {
        assert_eq!(parse_utc_offset("+08:00"), Ok(28_800));
        assert_eq!(parse_utc_offset("-0530"), Ok(-19_800));
        assert_eq!(parse_utc_offset("UTC"), Ok(0));
        assert!(parse_utc_offset("8").is_err());
        assert!(parse_utc_offset("+99:00").is_err());
    }
}
