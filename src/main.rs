//! The `msyncdump` command line: parses arguments into a configuration, runs the library,
//! maps the outcome to an exit status (0 success, 2 error; a closed output pipe ends quietly).

use std::io::{self, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};

use msyncdump::capture::{CaptureError, FileReader, PacketSource};
use msyncdump::msync::render::RenderOpts;
use msyncdump::pipeline::parallel;
use msyncdump::pipeline::print::{tally, Format, PrintOptions, Printer};
use msyncdump::pipeline::{run_sources, Pipeline, PipelineConfig};
use msyncdump::time::Zone;

// Decoding allocates a few dozen small strings and vectors per message (prost's owned types);
// mimalloc's thread-local free lists serve them in a fraction of glibc malloc's time.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "msyncdump",
    version,
    about = "Dissector and analyzer for MSync, the Easemob IM protocol"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print every MSync message of pcap/pcapng captures (optionally gzip-, zstd- or LZ4-compressed).
    Dissect(DissectArgs),
    /// Sessions, queues, latencies, error codes and findings of captures, for incident review.
    Report(ReportArgs),
    /// Write a synthetic MSync capture.
    Synth(SynthArgs),
    /// Summarise capture files without decoding them (records, bytes, time span, link types).
    Info(InfoArgs),
    /// Capture live from a network interface (needs the `live` build feature and capture
    /// rights) and print messages as they complete.
    Live(LiveArgs),
}

#[derive(Args)]
struct LiveArgs {
    /// List the interfaces with their addresses, like `tcpdump -D`.
    #[arg(short = 'D', long = "list-interfaces")]
    list: bool,
    /// The interface to capture on.
    #[arg(short = 'i', long = "interface", value_name = "IFACE", required_unless_present = "list")]
    interface: Option<String>,
    /// A BPF capture filter, as for tcpdump (e.g. "tcp port 6717").
    #[arg(short = 'f', long = "filter", value_name = "BPF")]
    filter: Option<String>,
    /// Bytes captured per packet.
    #[arg(short = 's', long = "snaplen", default_value_t = 262_144)]
    snaplen: i32,
    /// The kernel's capture buffer in KiB, as tcpdump's -B: what a burst can fill while
    /// msyncdump is busy before packets are dropped.
    #[arg(short = 'B', long = "buffer-size", value_name = "KIB", default_value_t = 16_384,
          value_parser = clap::value_parser!(u32).range(256..=4_194_304))]
    buffer_size: u32,
    /// Put the interface in promiscuous mode.
    #[arg(long)]
    promisc: bool,
    /// Also save the raw packets to this pcapng file.
    #[arg(short = 'w', long = "write", value_name = "FILE")]
    write: Option<PathBuf>,
    /// Stop after this many packets.
    #[arg(short = 'c', long = "count", value_name = "COUNT")]
    count: Option<u64>,
    /// Stop after this long (e.g. 30s, 5m).
    #[arg(long, value_name = "DURATION", value_parser = msyncdump::report::parse_duration)]
    duration: Option<i64>,
    /// Print the running report on standard error at this interval (e.g. 10s).
    #[arg(long, value_name = "DURATION", value_parser = msyncdump::report::parse_duration)]
    report_every: Option<i64>,
    /// Finished sessions kept as rows of the running and final report; older ones are folded
    /// into the totals, so a run of days holds only what is open.
    #[arg(long, value_name = "N", default_value_t = 1000)]
    keep_sessions: usize,
    /// Drop root privileges to this user once the interface is open, as tcpdump does.
    #[arg(short = 'Z', long = "relinquish-privileges", value_name = "USER")]
    user: Option<String>,
    /// A port whose owner is the server, whatever the handshake says (repeatable).
    #[arg(long = "server-port", value_name = "PORT")]
    server_ports: Vec<u16>,
    /// Full decoded tree of every message (same as --format verbose).
    #[arg(short = 'V', long, conflicts_with_all = ["json", "format"])]
    verbose: bool,
    /// NDJSON, one object per message (same as --format json).
    #[arg(long, conflicts_with = "format")]
    json: bool,
    /// Output format.
    #[arg(long, value_enum)]
    format: Option<FormatArg>,
    /// Print secrets (tokens, passwords, keys) instead of "***".
    #[arg(long)]
    show_secrets: bool,
    /// No per-message output; only the reports and counts.
    #[arg(short, long)]
    quiet: bool,
    /// Flush output after every message (the default when standard output is a terminal).
    #[arg(long)]
    line_buffered: bool,
}

#[derive(Args)]
struct InfoArgs {
    /// Capture files ("-" reads standard input).
    #[arg(required = true)]
    files: Vec<PathBuf>,
}

#[derive(Clone, Copy, ValueEnum)]
enum TransportArg {
    Tcp,
    Websocket,
}

#[derive(Clone, Copy, ValueEnum)]
enum FormatArg {
    Summary,
    Verbose,
    Sdklog,
    Json,
}

#[derive(Args)]
struct InputArgs {
    /// Capture files: pcap or pcapng, optionally gzip-, zstd- or LZ4-compressed; "-" reads standard input.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// A port whose owner is the server, whatever the handshake says (repeatable).
    #[arg(long = "server-port", value_name = "PORT")]
    server_ports: Vec<u16>,
    /// Largest MSync frame accepted, in bytes; a longer length prefix is an "oversize frame".
    #[arg(long, value_name = "BYTES", default_value_t = 16 << 20)]
    max_frame: usize,
    /// Largest inflated size of a compressed payload, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = 16 << 20)]
    max_inflate: usize,
    /// Memory held by out-of-order segments per TCP direction before the hole is declared lost
    /// (each segment counts its bytes, a quarter more and 80 bytes: what holding it costs).
    #[arg(long, value_name = "BYTES", default_value_t = 4 << 20)]
    max_flow_buffer: usize,
    /// Memory held by out-of-order segments over all connections, counted the same way.
    #[arg(long, value_name = "BYTES", default_value_t = 256 << 20)]
    max_total_buffer: usize,
    /// Connections tracked at once; past it the idlest is evicted (counted).
    #[arg(long, value_name = "N", default_value_t = 1 << 18)]
    max_flows: usize,
    /// Deepest nesting of embedded messages expanded when rendering; deeper ones print as bytes.
    #[arg(long, value_name = "LEVELS", default_value_t = 64)]
    max_depth: usize,
    /// Print secrets (tokens, passwords, keys) instead of "***".
    #[arg(long)]
    show_secrets: bool,
    /// Take every connection to carry this transport instead of detecting it (for connections
    /// picked up mid-stream, whose WebSocket upgrade was not captured).
    #[arg(long, value_enum)]
    transport: Option<TransportArg>,
    /// Show absolute times in the machine's local time zone instead of UTC.
    #[arg(long, conflicts_with = "utc_offset")]
    local: bool,
    /// Show absolute times at this UTC offset (e.g. +08:00) instead of UTC.
    #[arg(long, value_name = "OFFSET", value_parser = msyncdump::time::parse_utc_offset, allow_hyphen_values = true)]
    utc_offset: Option<i32>,
}

#[derive(Args)]
struct DissectArgs {
    #[command(flatten)]
    input: InputArgs,
    /// Full decoded tree of every message (same as --format verbose).
    #[arg(short = 'V', long, conflicts_with_all = ["json", "format"])]
    verbose: bool,
    /// NDJSON, one object per message (same as --format json).
    #[arg(long, conflicts_with = "format")]
    json: bool,
    /// Output format.
    #[arg(long, value_enum)]
    format: Option<FormatArg>,
    /// No per-message output; only the tally.
    #[arg(short, long)]
    quiet: bool,
    /// Print at most N error lines (undecodable frames, oversize frames, skipped bytes, gaps);
    /// the rest are counted in the tally.
    #[arg(long, value_name = "N")]
    max_errors: Option<u64>,
    /// Flush output after every message (the default when standard output is a terminal).
    #[arg(long)]
    line_buffered: bool,
    /// Threads that decode and print: with 1, one thread does everything; with N > 1, one
    /// thread reads and reassembles, N decode and render batches of messages in turn, and one
    /// writes them in order. The output is the same. Default: the number of cores when there
    /// are several, no input is standard input and the output is not line-buffered; else 1.
    #[arg(short = 'j', long = "threads", value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    threads: Option<u32>,
    #[command(flatten)]
    window: WindowArgs,
}

/// The connections and the time window `dissect` prints and `report` counts.
#[derive(Args)]
struct WindowArgs {
    /// Only these connections (repeatable, or comma-separated).
    #[arg(long = "conn", value_name = "N", value_delimiter = ',')]
    conns: Vec<u32>,
    /// Only from this time: absolute (2017-10-26T12:29:00Z, "2017-10-26 12:29:00"), a time of day
    /// on the capture's day (12:29, 12:29:30.5) or an offset from the capture start (+30s, 90).
    #[arg(long, value_name = "TIME", value_parser = msyncdump::report::parse_time_bound, allow_hyphen_values = true)]
    since: Option<msyncdump::report::TimeBound>,
    /// Only until this time (same forms as --since).
    #[arg(long, value_name = "TIME", value_parser = msyncdump::report::parse_time_bound, allow_hyphen_values = true)]
    until: Option<msyncdump::report::TimeBound>,
}

#[derive(Args)]
struct ReportArgs {
    #[command(flatten)]
    input: InputArgs,
    /// The whole report as one JSON document.
    #[arg(long)]
    json: bool,
    /// Show only this section (repeatable, or comma-separated): overview, sessions, queues,
    /// latency, errors, messages, findings.
    #[arg(long = "section", value_name = "NAME", value_delimiter = ',', value_parser = msyncdump::report::Section::parse)]
    sections: Vec<msyncdump::report::Section>,
    /// Show at most N rows of each long table (sessions, queues, errors, findings, top senders
    /// and receivers), then a "… N more" line. The fixed tables (overview, latency, and the
    /// message counts by namespace, body and content type) are always whole.
    #[arg(long, value_name = "N")]
    top: Option<usize>,
    /// No colours (also when NO_COLOR is set or the output is not a terminal).
    #[arg(long)]
    no_color: bool,
    /// Fit tables to this width (default: the terminal's, else 120).
    #[arg(long, value_name = "COLUMNS")]
    width: Option<u16>,
    /// Exchanges slower than this are findings (e.g. 500ms, 2s).
    #[arg(long, value_name = "DURATION", default_value = "500ms", value_parser = msyncdump::report::parse_duration)]
    slow: i64,
    /// Only sessions of this user (name, or JID).
    #[arg(long, value_name = "NAME")]
    user: Option<String>,
    #[command(flatten)]
    window: WindowArgs,
    /// Worker threads; connections are sharded over them (the output does not change).
    #[arg(short = 'j', long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=256))]
    jobs: u16,
}

#[derive(Clone, Copy, ValueEnum)]
enum CaptureFormatArg {
    Pcap,
    Pcapng,
}

#[derive(Args)]
struct SynthArgs {
    /// Output file ("-" for standard output).
    #[arg(short = 'w', long = "output", value_name = "FILE")]
    output: PathBuf,
    /// Write the exchange of the protocol description (login, send "456", receive "123").
    #[arg(long)]
    seed_exchange: bool,
    #[arg(long, value_enum, default_value = "pcap")]
    format: CaptureFormatArg,
    /// PRNG seed: the same seed and options give the same bytes.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Concurrent client sessions.
    #[arg(long, default_value_t = 4)]
    clients: usize,
    /// Capture length in seconds.
    #[arg(long, default_value_t = 60.0)]
    duration: f64,
    /// TCP maximum segment size.
    #[arg(long, default_value_t = 1400)]
    mss: usize,
    /// Probability that a segment is lost for good.
    #[arg(long, default_value_t = 0.0)]
    loss: f64,
    /// Probability that a segment is swapped with the next.
    #[arg(long, default_value_t = 0.0)]
    reorder: f64,
    /// Probability that a packet is duplicated.
    #[arg(long, default_value_t = 0.0)]
    duplicate: f64,
    /// Probability that a segment is retransmitted later.
    #[arg(long, default_value_t = 0.0)]
    retransmit: f64,
    /// Start the capture after the connections were set up.
    #[arg(long)]
    midstream: bool,
    /// Fraction of messages with zlib-compressed payloads.
    #[arg(long, default_value_t = 0.0)]
    zlib: f64,
    /// Fraction of requests answered with an error status.
    #[arg(long, default_value_t = 0.0)]
    errors: f64,
    /// Fraction of requests never answered.
    #[arg(long, default_value_t = 0.0)]
    unanswered: f64,
    /// Nanosecond timestamps.
    #[arg(long)]
    nanos: bool,
    /// IPv6 instead of IPv4.
    #[arg(long)]
    ipv6: bool,
    /// The server's TCP port.
    #[arg(long, default_value_t = 6717)]
    server_port: u16,
    /// Mean pause between a session's activities, in seconds.
    #[arg(long, default_value_t = 3.0)]
    mean_gap: f64,
    /// Do not keep the ground truth in memory (for very large captures).
    #[arg(long)]
    no_truth: bool,
    /// Carry MSync over WebSocket (HTTP upgrade, one binary message per MSync message).
    #[arg(long)]
    websocket: bool,
    /// Negotiate permessage-deflate with context takeover (implies --websocket).
    #[arg(long)]
    ws_deflate: bool,
    /// Negotiate permessage-deflate without context takeover (implies --websocket).
    #[arg(long, conflicts_with = "ws_deflate")]
    ws_deflate_no_takeover: bool,
    /// Probability that a WebSocket message is sent in several fragments.
    #[arg(long, default_value_t = 0.0, value_name = "P")]
    ws_fragment: f64,
    /// Probability of a server ping before or inside a server message.
    #[arg(long, default_value_t = 0.0, value_name = "P")]
    ws_ping: f64,
    /// Fraction of sessions whose WebSocket upgrade is refused.
    #[arg(long, default_value_t = 0.0, value_name = "P")]
    ws_reject: f64,
    /// Send client frames without a mask, as test harnesses and some non-browser clients do
    /// (against RFC 6455; implies --websocket).
    #[arg(long)]
    ws_unmasked: bool,
    /// LZ4 protocol compression negotiated at login, for these directions.
    #[arg(long, value_enum, value_name = "DIR")]
    lz4: Option<Lz4Arg>,
}

#[derive(Clone, Copy, ValueEnum)]
enum Lz4Arg {
    Up,
    Down,
    Bi,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Dissect(args) => dissect(args),
        Command::Report(args) => report(args),
        Command::Synth(args) => synth(args),
        Command::Info(args) => info(args),
        Command::Live(args) => live(args),
    };
    match result {
        Ok(code) => code,
        // `msyncdump … | head`: the reader is gone, which is no failure of ours.
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("msyncdump: {e}");
            ExitCode::from(2)
        }
    }
}

fn pipeline_config(input: &InputArgs) -> PipelineConfig {
    let mut cfg = PipelineConfig::default();
    cfg.net.server_ports = input.server_ports.clone();
    cfg.net.max_flow_buffer = input.max_flow_buffer;
    cfg.net.max_total_buffer = input.max_total_buffer;
    cfg.net.max_flows = input.max_flows.max(1);
    cfg.max_frame = input.max_frame;
    cfg.decode.max_inflated = input.max_inflate;
    cfg.ws.max_inflated = input.max_inflate;
    cfg.transport = input.transport.map(|t| match t {
        TransportArg::Tcp => msyncdump::pipeline::Transport::Tcp,
        TransportArg::Websocket => msyncdump::pipeline::Transport::WebSocket,
    });
    cfg
}

fn render_opts(input: &InputArgs) -> RenderOpts {
    RenderOpts {
        show_secrets: input.show_secrets,
        max_inflated: input.max_inflate,
        max_depth: input.max_depth,
    }
}

fn zone(input: &InputArgs) -> Zone {
    if let Some(o) = input.utc_offset {
        return Zone::Fixed(o);
    }
    if input.local {
        return Zone::local().unwrap_or_else(|e| {
            eprintln!("msyncdump: warning: --local: {e}; showing UTC");
            Zone::Utc
        });
    }
    Zone::Utc
}

fn open_all(
    files: &[PathBuf],
) -> impl Iterator<Item = Result<Box<dyn PacketSource>, CaptureError>> + '_ {
    files.iter().map(|f| FileReader::open(f).map(|r| Box::new(r) as Box<dyn PacketSource>))
}

fn output_format(verbose: bool, json: bool, format: Option<FormatArg>) -> Format {
    if verbose {
        Format::Verbose
    } else if json {
        Format::Json
    } else {
        match format {
            None | Some(FormatArg::Summary) => Format::Summary,
            Some(FormatArg::Verbose) => Format::Verbose,
            Some(FormatArg::Sdklog) => Format::SdkLog,
            Some(FormatArg::Json) => Format::Json,
        }
    }
}

fn dissect(args: DissectArgs) -> io::Result<ExitCode> {
    let format = output_format(args.verbose, args.json, args.format);
    let stdout = io::stdout();
    let line_buffered = args.line_buffered || stdout.is_terminal();
    let zone = zone(&args.input);
    let select = match selection(&args, &zone) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("msyncdump: {e}");
            return Ok(ExitCode::from(2));
        }
    };
    let narrowed = select.narrows().then(|| selection_text(&select, &zone));
    let opts = PrintOptions {
        format,
        render: render_opts(&args.input),
        quiet: args.quiet,
        zone,
        line_buffered,
        max_errors: args.max_errors,
        select,
    };
    let workers = match args.threads {
        // The error-line budget is counted in one place: one printer.
        _ if opts.max_errors.is_some() => 1,
        Some(n) => n as usize,
        None if line_buffered || args.input.files.iter().any(|f| f.as_os_str() == "-") => 1,
        None => std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    let mut stderr_lines = |line: &str| eprintln!("msyncdump: {line}");
    let (outcome, totals, suppressed) = if workers > 1 {
        // The writer thread takes the (sendable) handle, which it locks once per buffer.
        let out = io::BufWriter::with_capacity(256 << 10, stdout);
        let (outcome, mut out, totals) = parallel::print(
            pipeline_config(&args.input),
            &opts,
            out,
            workers.min(parallel::MAX_WORKERS),
            &mut open_all(&args.input.files),
            &mut stderr_lines,
        )?;
        out.flush()?;
        (outcome, totals, 0)
    } else {
        let out = io::BufWriter::with_capacity(256 << 10, stdout.lock());
        let mut pipeline = Pipeline::new(pipeline_config(&args.input), Printer::new(out, opts));
        let outcome =
            run_sources(&mut open_all(&args.input.files), &mut pipeline, &mut stderr_lines)?;
        let (printer, mut totals) = pipeline.finish()?;
        totals.selected = printer.selected();
        let suppressed = printer.errors_suppressed();
        printer.into_inner().flush()?;
        (outcome, totals, suppressed)
    };
    let mut line = tally(&totals);
    if let Some(what) = narrowed {
        line.push_str(&format!(", {} selected by {what}", totals.selected));
    }
    let order = outcome.time_order;
    if let (Some((first, _)), Some((step, _, _))) = (order.first, order.largest) {
        // Times printed past such a packet run backwards: the reader is told once, here.
        line.push_str(&format!(
            ", {} packet{} earlier than the one before (the first #{first}, the largest step back {})",
            order.steps_back,
            if order.steps_back == 1 { "" } else { "s" },
            msyncdump::report::fmt_dur(step)
        ));
    }
    if suppressed > 0 {
        line.push_str(&format!(", {suppressed} error lines not shown (--max-errors)"));
    }
    eprintln!("msyncdump: {line}");
    Ok(if outcome.errors > 0 { ExitCode::from(2) } else { ExitCode::SUCCESS })
}

/// `dissect`'s `--conn`, `--since` and `--until`, the window as capture times. A time of day
/// or an offset counts from the capture's first packet, read here before the run (standard
/// input cannot be read twice: there, only a date and time will do).
fn selection(
    args: &DissectArgs,
    zone: &Zone,
) -> Result<msyncdump::pipeline::print::Select, String> {
    use msyncdump::report::TimeBound;
    let w = &args.window;
    let relative = [w.since, w.until]
        .iter()
        .any(|b| matches!(b, Some(TimeBound::Offset(_) | TimeBound::TimeOfDay { .. })));
    let mut start = msyncdump::capture::Timestamp::default();
    // The capture's first packet: that of the first file that has one, as the run reads them.
    for f in args.input.files.iter().filter(|_| relative) {
        if f.as_os_str() == "-" {
            return Err("--since/--until on standard input need a date and time \
                 (2017-10-26T12:29:00Z): a time of day or an offset counts from the first \
                 packet, which is not known before reading"
                .into());
        }
        // A file that cannot be read is told of by the run.
        let first = FileReader::open(f)
            .ok()
            .and_then(|mut src| src.next_packet().ok().flatten().map(|p| p.ts));
        if let Some(ts) = first {
            start = ts;
            break;
        }
    }
    Ok(msyncdump::pipeline::print::Select {
        conns: sorted_set(&w.conns),
        since: w.since.map(|b| b.resolve(start, zone)),
        until: w.until.map(|b| b.resolve(start, zone)),
    })
}

/// Connection indexes as given, sorted and each once.
fn sorted_set(conns: &[u32]) -> Vec<u32> {
    let mut v = conns.to_vec();
    v.sort_unstable();
    v.dedup();
    v
}

/// `--conn 1, 3, --since 2017-10-26 12:29:00.000000 UTC`: a selection as the tally names it.
fn selection_text(s: &msyncdump::pipeline::print::Select, zone: &Zone) -> String {
    let mut parts = Vec::new();
    if !s.conns.is_empty() {
        parts.push(format!("--conn {}", msyncdump::report::fmt_conns(&s.conns)));
    }
    for (flag, b) in [("--since", s.since), ("--until", s.until)] {
        if let Some(ts) = b {
            let mut t = format!("{flag} ");
            msyncdump::time::write_human(&mut t, ts, zone.offset_at(ts));
            parts.push(t);
        }
    }
    parts.join(", ")
}

fn report(args: ReportArgs) -> io::Result<ExitCode> {
    use msyncdump::analysis::Analyzer;
    use msyncdump::report::ReportOptions;
    let stdout = io::stdout();
    let tty = stdout.is_terminal();
    let zone = zone(&args.input);
    let opts = ReportOptions {
        sections: if args.sections.is_empty() { None } else { Some(args.sections.clone()) },
        top: args.top,
        color: tty && !args.no_color && std::env::var_os("NO_COLOR").is_none(),
        width: args.width.or_else(|| if tty { terminal_width() } else { None }),
        slow_ns: args.slow,
        user: args.user.clone(),
        conns: sorted_set(&args.window.conns),
        since: args.window.since,
        until: args.window.until,
        zone: zone.clone(),
        show_secrets: args.input.show_secrets,
    };
    let jobs = usize::from(args.jobs);
    // Shards cannot apply --conn to numbers given only when they merge.
    let shard_opts = ReportOptions {
        conns: if jobs > 1 { Vec::new() } else { opts.conns.clone() },
        ..opts.clone()
    };
    let cfg = pipeline_config(&args.input);
    let make = |start| {
        let mut a = Analyzer::new(&shard_opts);
        a.set_capture_start(start);
        a.set_decode_limits(cfg.decode);
        if jobs > 1 {
            a.number_for_merge();
            if !opts.conns.is_empty() {
                a.split_tables();
            }
        }
        Pipeline::new(cfg.clone(), a)
    };
    let progress = std::cell::RefCell::new(msyncdump::report::progress::Progress::new(
        &args.input.files,
        io::stderr().is_terminal(),
    ));
    let mut stderr_lines = |line: &str| {
        progress.borrow_mut().clear();
        eprintln!("msyncdump: {line}");
    };
    let (shards, outcome) = msyncdump::pipeline::shard::run_sharded(
        &mut open_all(&args.input.files),
        jobs,
        make,
        &mut stderr_lines,
        &mut |pos| progress.borrow_mut().update(pos),
    )?;
    progress.borrow_mut().clear();
    let mut shards: Vec<Analyzer> = shards.into_iter().map(|(a, _)| a).collect();
    let mut analyzer = match shards.pop() {
        Some(one) if shards.is_empty() => one,
        Some(last) => {
            shards.push(last);
            Analyzer::merge_shards(shards, &opts)
        }
        None => Analyzer::new(&opts),
    };
    analyzer.set_time_order(outcome.time_order);
    let report = analyzer.report();
    // The tables are laid out from the report alone: the analysis state goes before they are,
    // so that the two are never held at once (~45 MB for 10 000 sessions).
    drop(analyzer);
    if report.overview.packets == 0 && outcome.errors > 0 {
        // No input gave a single packet, and the error lines above say why: a report of
        // zeros would only look like an answer.
        return Ok(ExitCode::from(2));
    }
    if let Some(why) = nothing_matched(&report) {
        eprintln!("msyncdump: warning: {why}");
    }
    let mut out = io::BufWriter::new(stdout.lock());
    if args.json {
        report.write_json(&mut out)?;
    } else {
        report.write_text_threads(&mut out, &opts, jobs)?;
    }
    out.flush()?;
    Ok(if outcome.errors > 0 { ExitCode::from(2) } else { ExitCode::SUCCESS })
}

/// Why a filtered report came out empty, to say so rather than print empty tables silently.
fn nothing_matched(r: &msyncdump::report::Report) -> Option<String> {
    if !r.filter.any()
        || !r.sessions.is_empty()
        || r.overview.messages > 0
        || !r.findings.is_empty()
    {
        return None;
    }
    if let (Some(s), Some(u)) = (r.filter.since, r.filter.until) {
        if s > u {
            return Some("--since is after --until: the window is empty".into());
        }
    }
    let mut asked = Vec::new();
    if !r.filter.conns.is_empty() {
        asked.push(format!("--conn {}", msyncdump::report::fmt_conns(&r.filter.conns)));
    }
    if let Some(u) = &r.filter.user {
        asked.push(format!("--user {u}"));
    }
    if r.filter.since.is_some() || r.filter.until.is_some() {
        asked.push("the time window".into());
    }
    let span = match (r.capture_start, r.capture_end) {
        (Some(a), Some(b)) => {
            let mut s = format!(" (the capture: {} TCP connections, ", r.overview.tcp_connections);
            msyncdump::time::write_human(&mut s, a, r.zone.offset_at(a));
            s.push_str(" → ");
            msyncdump::time::write_human(&mut s, b, r.zone.offset_at(b));
            s.push(')');
            s
        }
        _ => String::new(),
    };
    Some(format!("nothing in the capture matches {}{span}", asked.join(" and ")))
}

/// The width of the terminal on standard output, else `COLUMNS` (which shells set but most
/// do not export).
fn terminal_width() -> Option<u16> {
    tty_columns()
        .or_else(|| std::env::var("COLUMNS").ok()?.trim().parse().ok())
        .filter(|&w| w >= 40)
}

#[cfg(unix)]
fn tty_columns() -> Option<u16> {
    let mut ws = libc::winsize { ws_row: 0, ws_col: 0, ws_xpixel: 0, ws_ypixel: 0 };
    // SAFETY: TIOCGWINSZ only writes a `winsize` into the struct it is given, which lives
    // for the call; on a descriptor that is not a terminal it fails and writes nothing.
    let rc = unsafe { libc::ioctl(libc::STDOUT_FILENO, libc::TIOCGWINSZ, &mut ws) };
    (rc == 0 && ws.ws_col > 0).then_some(ws.ws_col)
}

#[cfg(not(unix))]
fn tty_columns() -> Option<u16> {
    None
}

fn synth(args: SynthArgs) -> io::Result<ExitCode> {
    use msyncdump::synth::{
        self, CaptureFormat, Lz4Direction, Lz4Mode, SynthConfig, SynthTransport, WsDeflate,
    };
    let format = match args.format {
        CaptureFormatArg::Pcap => CaptureFormat::Pcap,
        CaptureFormatArg::Pcapng => CaptureFormat::PcapNg,
    };
    for (name, p) in [
        ("--loss", args.loss),
        ("--reorder", args.reorder),
        ("--duplicate", args.duplicate),
        ("--retransmit", args.retransmit),
        ("--zlib", args.zlib),
        ("--errors", args.errors),
        ("--unanswered", args.unanswered),
        ("--ws-fragment", args.ws_fragment),
        ("--ws-ping", args.ws_ping),
        ("--ws-reject", args.ws_reject),
    ] {
        if !(0.0..=1.0).contains(&p) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{name} {p}: not a probability"),
            ));
        }
    }
    let out: Box<dyn Write> = if args.output.as_os_str() == "-" {
        Box::new(io::stdout().lock())
    } else {
        let file = std::fs::File::create(&args.output)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", args.output.display())))?;
        Box::new(file)
    };
    let out = io::BufWriter::with_capacity(1 << 20, out);
    let truth = if args.seed_exchange {
        synth::seed_capture(out, format)?
    } else {
        let cfg = SynthConfig {
            seed: args.seed,
            clients: args.clients,
            duration_secs: args.duration,
            mean_gap_secs: args.mean_gap,
            mss: args.mss,
            loss: args.loss,
            reorder: args.reorder,
            duplicate: args.duplicate,
            retransmit: args.retransmit,
            midstream: args.midstream,
            zlib: args.zlib,
            error_rate: args.errors,
            unanswered: args.unanswered,
            format,
            nanos: args.nanos,
            ipv6: args.ipv6,
            server_port: args.server_port,
            collect_truth: !args.no_truth,
            transport: if args.websocket
                || args.ws_deflate
                || args.ws_deflate_no_takeover
                || args.ws_fragment > 0.0
                || args.ws_ping > 0.0
                || args.ws_reject > 0.0
                || args.ws_unmasked
            {
                SynthTransport::WebSocket
            } else {
                SynthTransport::Tcp
            },
            ws_deflate: if args.ws_deflate {
                Some(WsDeflate { context_takeover: true })
            } else if args.ws_deflate_no_takeover {
                Some(WsDeflate { context_takeover: false })
            } else {
                None
            },
            ws_fragment: args.ws_fragment,
            ws_ping: args.ws_ping,
            ws_reject: args.ws_reject,
            ws_unmasked: args.ws_unmasked,
            lz4: args.lz4.map(|d| Lz4Mode {
                direction: match d {
                    Lz4Arg::Up => Lz4Direction::OnlyUp,
                    Lz4Arg::Down => Lz4Direction::OnlyDown,
                    Lz4Arg::Bi => Lz4Direction::Bi,
                },
            }),
            ..SynthConfig::default()
        };
        synth::generate(&cfg, out)?
    };
    eprintln!(
        "msyncdump: wrote {} packets, {} connections, {} messages to {}",
        truth.packets,
        truth.connections.len(),
        truth.connections.iter().map(|c| c.messages[0] + c.messages[1]).sum::<u64>(),
        args.output.display()
    );
    Ok(ExitCode::SUCCESS)
}

fn info(args: InfoArgs) -> io::Result<ExitCode> {
    let mut out = io::stdout().lock();
    let mut failed = false;
    for file in &args.files {
        let mut reader = match FileReader::open(file) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("msyncdump: error: {e}");
                failed = true;
                continue;
            }
        };
        let (mut packets, mut bytes, mut first, mut last) = (0u64, 0u64, None, None);
        let mut links: Vec<(msyncdump::capture::LinkType, u64)> = Vec::new();
        // Records cut by the snaplen.
        let mut cut = 0u64;
        let mut order = msyncdump::capture::TimeOrder::default();
        loop {
            match reader.next_packet() {
                Ok(Some(p)) => {
                    packets += 1;
                    bytes += p.data.len() as u64;
                    cut += u64::from(p.orig_len as usize > p.data.len());
                    order.see(p.index, p.ts);
                    first = first.or(Some(p.ts));
                    last = Some(last.map_or(p.ts, |l: msyncdump::capture::Timestamp| l.max(p.ts)));
                    match links.iter_mut().find(|(l, _)| *l == p.link) {
                        Some((_, n)) => *n += 1,
                        None => links.push((p.link, 1)),
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    eprintln!(
                        "msyncdump: {}: {e}",
                        if e.is_warning() { "warning" } else { "error" }
                    );
                    failed |= !e.is_warning();
                    break;
                }
            }
        }
        let stats = reader.stats();
        writeln!(out, "file: {}", file.display())?;
        writeln!(out, "format: {}", reader.format_description())?;
        writeln!(out, "compression: {}", reader.compression().unwrap_or("none"))?;
        if let Some(size) = std::fs::metadata(file).ok().filter(|m| m.is_file()).map(|m| m.len()) {
            writeln!(out, "file size: {size} bytes")?;
        }
        write_capture_meta(&mut out, reader.meta())?;
        writeln!(out, "packets: {packets}")?;
        writeln!(out, "captured bytes: {bytes}")?;
        writeln!(out, "packets cut by the snaplen: {cut}")?;
        if let (Some(f), Some(l)) = (first, last) {
            let (mut a, mut b) = (String::new(), String::new());
            msyncdump::time::write_human(&mut a, f, None);
            msyncdump::time::write_human(&mut b, l, None);
            writeln!(
                out,
                "first packet: {a}\nlast packet: {b}\nspan: {:.6} s",
                l.since(f) as f64 / 1e9
            )?;
        }
        let human = |ts| {
            let mut e = String::new();
            msyncdump::time::write_human(&mut e, ts, None);
            e
        };
        match msyncdump::report::time_order_text(&order, human) {
            Some(text) => writeln!(out, "time order: {text}")?,
            None => writeln!(out, "time order: strict")?,
        }
        for (l, n) in &links {
            writeln!(out, "link type {l}: {n} packets")?;
        }
        writeln!(out, "blocks skipped: {}", stats.skipped_blocks)?;
        writeln!(out, "records skipped (naming an undeclared interface): {}", stats.bad_records)?;
        if let Some((at, damage)) = stats.first_damage {
            // The first damage is named on the line of its kind.
            let first = format!("the first at offset {at}: {damage}");
            let repair_first =
                matches!(damage, msyncdump::capture::Damage::RecordLengthRepaired(..));
            if stats.damaged > 0 {
                let first = if repair_first { String::new() } else { format!("; {first}") };
                writeln!(
                    out,
                    "damaged stretches passed over: {} ({} bytes{first})",
                    stats.damaged, stats.damaged_bytes
                )?;
            }
            if stats.repaired > 0 {
                let first = if repair_first { format!("; {first}") } else { String::new() };
                writeln!(
                    out,
                    "record lengths repaired: {} (damaged, read as the original length, where \
                     the next record starts{first})",
                    stats.repaired
                )?;
            }
            failed = true;
        }
    }
    Ok(if failed { ExitCode::from(2) } else { ExitCode::SUCCESS })
}

/// Where the capture was taken, as far as the file says: pcapng's sections, the capturing
/// hardware, OS and application, and each interface (for pcap, its one link type and snaplen).
fn write_capture_meta(out: &mut impl Write, m: &msyncdump::capture::CaptureMeta) -> io::Result<()> {
    if m.sections > 0 {
        writeln!(out, "sections: {}", m.sections)?;
    }
    for (what, v) in [("hardware", &m.hardware), ("OS", &m.os), ("application", &m.application)] {
        if let Some(v) = v {
            writeln!(out, "capture {what}: {v}")?;
        }
    }
    for ifc in &m.interfaces {
        match m.sections {
            0 | 1 => write!(out, "interface {}:", ifc.id)?,
            _ => write!(out, "interface {} of section {}:", ifc.id, ifc.section)?,
        }
        if let Some(name) = &ifc.name {
            write!(out, " {name}")?;
        }
        if let Some(d) = &ifc.description {
            write!(out, " ({d})")?;
        }
        write!(out, " {}", ifc.link)?;
        match ifc.snaplen {
            0 => write!(out, ", no snaplen")?,
            n => write!(out, ", snaplen {n}")?,
        }
        if let Some(f) = &ifc.filter {
            write!(out, ", filter \"{f}\"")?;
        }
        if let Some(os) = &ifc.os {
            write!(out, ", OS {os}")?;
        }
        writeln!(out)?;
    }
    let more = m.interfaces_total.saturating_sub(m.interfaces.len() as u64);
    if more > 0 {
        writeln!(out, "interfaces not listed: {more}")?;
    }
    Ok(())
}

#[cfg(not(feature = "live"))]
fn live(_args: LiveArgs) -> io::Result<ExitCode> {
    eprintln!(
        "msyncdump: live capture is not in this build: build with `cargo build --release --features live` \
         (needs libpcap-dev on Debian/Ubuntu)"
    );
    Ok(ExitCode::from(2))
}

#[cfg(feature = "live")]
fn live(args: LiveArgs) -> io::Result<ExitCode> {
    use std::cell::RefCell;
    use std::rc::Rc;
    use std::time::{Duration, Instant};

    use msyncdump::analysis::Analyzer;
    use msyncdump::capture::live::{self, LiveConfig, LiveSource};
    use msyncdump::capture::write::{CaptureFormat, CaptureWriter};
    use msyncdump::pipeline::print::Tee;
    use msyncdump::report::{ReportOptions, Section};

    if args.list {
        match live::list_interfaces() {
            Ok(lines) => {
                let mut out = io::stdout().lock();
                for l in lines {
                    writeln!(out, "{l}")?;
                }
                return Ok(ExitCode::SUCCESS);
            }
            Err(e) => {
                eprintln!("msyncdump: cannot list interfaces: {e}");
                return Ok(ExitCode::from(2));
            }
        }
    }
    let Some(interface) = args.interface.clone() else {
        eprintln!("msyncdump: live needs -i IFACE (or -D to list interfaces)");
        return Ok(ExitCode::from(2));
    };
    let cfg = LiveConfig {
        interface,
        filter: args.filter.clone(),
        snaplen: args.snaplen,
        buffer_kib: args.buffer_size,
        promisc: args.promisc,
        count: args.count,
        duration: args.duration.map(|ns| Duration::from_nanos(u64::try_from(ns).unwrap_or(0))),
    };
    let mut source = match LiveSource::open(&cfg) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("msyncdump: error: {e}");
            return Ok(ExitCode::from(2));
        }
    };
    let link = source.link_type();
    let writer = match &args.write {
        Some(path) => {
            let file = std::fs::File::create(path)
                .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
            let w = CaptureWriter::new(
                io::BufWriter::new(file),
                CaptureFormat::PcapNg,
                link,
                u32::try_from(args.snaplen).unwrap_or(262_144),
                true,
            )?;
            Some(Rc::new(RefCell::new(Some(w))))
        }
        None => None,
    };
    if let Some(w) = &writer {
        let w = Rc::clone(w);
        source.set_tap(Box::new(move |p| match w.borrow_mut().as_mut() {
            Some(w) => w.write_packet(p.ts, p.data, p.orig_len),
            None => Ok(()),
        }));
    }
    if let Some(user) = &args.user {
        if let Err(e) = live::drop_privileges(user) {
            eprintln!("msyncdump: error: -Z {user}: {e}");
            return Ok(ExitCode::from(2));
        }
    }
    live::install_stop_signals();

    let stdout = io::stdout();
    let opts = PrintOptions {
        format: output_format(args.verbose, args.json, args.format),
        render: RenderOpts { show_secrets: args.show_secrets, ..RenderOpts::default() },
        quiet: args.quiet,
        zone: Zone::Utc,
        line_buffered: args.line_buffered || stdout.is_terminal(),
        max_errors: None,
        select: Default::default(),
    };
    let report_opts = ReportOptions {
        sections: Some(vec![
            Section::Overview,
            Section::Sessions,
            Section::Latency,
            Section::Errors,
            Section::Findings,
        ]),
        top: Some(10),
        color: false,
        width: terminal_width(),
        show_secrets: args.show_secrets,
        ..ReportOptions::default()
    };
    let mut pcfg = PipelineConfig::default();
    pcfg.net.server_ports = args.server_ports.clone();
    // Live runs for days: idle connections go sooner than offline.
    pcfg.net.idle_timeout_ns = 300_000_000_000;
    let printer = Printer::new(io::BufWriter::with_capacity(64 << 10, stdout.lock()), opts);
    let mut analyzer = Analyzer::new(&report_opts);
    analyzer.fold_finished_sessions(args.keep_sessions);
    let mut pipeline = Pipeline::new(pcfg, Tee { a: printer, b: analyzer });
    let every = args.report_every.and_then(|ns| u64::try_from(ns).ok()).map(Duration::from_nanos);
    let mut next_report = every.map(|d| Instant::now() + d);
    let mut failed = false;
    let mut order = msyncdump::capture::TimeOrder::default();
    loop {
        match source.next_packet() {
            Ok(Some(pkt)) => {
                order.see(pkt.index, pkt.ts);
                pipeline.packet(&pkt)?
            }
            Ok(None) => break,
            Err(e) => {
                eprintln!("msyncdump: error: {e}");
                failed = true;
                break;
            }
        }
        if let (Some(at), Some(d)) = (next_report, every) {
            if Instant::now() >= at {
                let st = source.live_stats();
                let drops = u64::from(st.dropped_by_kernel) + u64::from(st.dropped_by_interface);
                pipeline.consumer_mut().b.set_capture_drops(drops);
                pipeline.consumer_mut().b.set_time_order(order);
                let report = pipeline.consumer_mut().b.report();
                let mut err = io::stderr().lock();
                writeln!(err, "--- running report ---")?;
                report.write_text(&mut err, &report_opts)?;
                next_report = Some(Instant::now() + d);
            }
        }
    }
    if let Some(e) = source.take_tap_error() {
        eprintln!("msyncdump: error: writing the capture file: {e}");
        failed = true;
    }
    let stats = source.live_stats();
    let (tee, totals) = pipeline.finish()?;
    let Tee { a: printer, b: mut analyzer } = tee;
    analyzer.set_capture_drops(
        u64::from(stats.dropped_by_kernel) + u64::from(stats.dropped_by_interface),
    );
    analyzer.set_time_order(order);
    printer.into_inner().flush()?;
    if let Some(w) = writer.and_then(|w| w.borrow_mut().take()) {
        w.finish()?.flush()?;
    }
    let mut err = io::stderr().lock();
    if every.is_some() {
        writeln!(err, "--- final report ---")?;
        analyzer.report().write_text(&mut err, &report_opts)?;
    }
    writeln!(
        err,
        "msyncdump: {} packets captured, {} received by filter, {} dropped by kernel, {} dropped by interface",
        totals.packets, stats.received, stats.dropped_by_kernel, stats.dropped_by_interface
    )?;
    if stats.dropped_by_kernel > 0 || stats.dropped_by_interface > 0 {
        writeln!(
            err,
            "msyncdump: warning: packets were dropped: streams have gaps the capture could not see"
        )?;
    }
    writeln!(err, "msyncdump: {}", tally(&totals))?;
    Ok(if failed { ExitCode::from(2) } else { ExitCode::SUCCESS })
}
