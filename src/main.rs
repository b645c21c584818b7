//! The sylk-gateway binary: command line and configuration -> reactor. Nothing else lives
//! here.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use sylk_gateway::config::{Config, Overrides};
use sylk_gateway::{app, logging};

/// mimalloc instead of glibc malloc: it hands emptied pages back to the OS on its own (no
/// `malloc_trim`, whose arena locks the reactor would wait on, and no purging thread), and
/// an idle chat session costs less RSS (README, "Benchmarks").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const USAGE: &str = "\
sylk-gateway: sylkRTC (WebSocket) <-> SIP gateway with in-process WebRTC media

Usage: sylk-gateway [OPTIONS]

Options:
  --config PATH        TOML configuration file (see sylk-gateway.sample.toml);
                       without it the embedded defaults apply: ws on 127.0.0.1:10888,
                       wss on 127.0.0.1:10889 with the dev certificate from certs/
  --ws-listen ADDR     ws:// listen address (IP:port, or 'off'); overrides the file
  --wss-listen ADDR    wss:// listen address (IP:port, or 'off'); overrides the file
  --sip-listen ADDR    SIP UDP and TCP listen address (IP:port)
  --sip-tls-listen ADDR
                       SIP TLS listen address (IP:port, or 'off')
  --outbound-proxy URI send every SIP request via this proxy,
                       e.g. sip:127.0.0.1:5060;transport=tcp
  --rtp-ports MIN-MAX  UDP port range for media (RTP/RTCP pairs, WebRTC sockets)
  --media-address IP   media address advertised in SDP and ICE candidates (NAT)
  --sip-srtp MODE      SRTP (SDES) in the gateway's SIP offers: auto (plain, SRTP
                       after a 488), mandatory (always SRTP) or off (never)
  --metrics-listen ADDR
                       separate listener for /metrics, /health, /ready and
                       POST /admin/drain (IP:port, or 'off')
  --msrp-listen ADDR   MSRP (chat) listener for peers that connect to the gateway
                       (IP:port, port 0 picks one, or 'off')
  --database PATH      message database (SQLite file, or ':memory:'); default
                       data/messages.sqlite under the working directory
  --log-level LEVEL    off, error, warn, info, debug or trace
  --trace-websocket    log every WebSocket frame (passwords/HA1 redacted)
  --check-config       validate the configuration and exit (0 if valid)
  -h, --help           show this help
  -V, --version        show the version

The WebSocket resource is /webrtcgateway/ws with subprotocol sylkRTC-1 or sylkRTC-2.
Signals: SIGTERM/SIGINT drain (no new connections or calls; calls in progress may
finish for shutdown.drain_timeout), a second one ends everything at once; SIGHUP
reloads the TLS certificate and the log level from the configuration file.
Exit codes: 0 after SIGTERM/SIGINT, 1 on a runtime error, 2 on a bad command line or config.
";

enum Cli {
    Run {
        config: Option<PathBuf>,
        overrides: Box<Overrides>,
        check_only: bool,
    },
    Help,
    Version,
}

fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Cli, String> {
    let mut config = None;
    let mut check_only = false;
    let mut overrides = Overrides::default();
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_owned(), Some(v.to_owned())),
            _ => (arg.clone(), None),
        };
        let mut value = |name: &str| {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match flag.as_str() {
            "-h" | "--help" => return Ok(Cli::Help),
            "-V" | "--version" => return Ok(Cli::Version),
            "--config" => config = Some(PathBuf::from(value("--config")?)),
            "--ws-listen" => overrides.ws_listen = Some(value("--ws-listen")?),
            "--wss-listen" => overrides.wss_listen = Some(value("--wss-listen")?),
            "--sip-listen" => overrides.sip_listen = Some(value("--sip-listen")?),
            "--sip-tls-listen" => overrides.sip_tls_listen = Some(value("--sip-tls-listen")?),
            "--outbound-proxy" => overrides.outbound_proxy = Some(value("--outbound-proxy")?),
            "--rtp-ports" => overrides.rtp_ports = Some(value("--rtp-ports")?),
            "--media-address" => overrides.media_address = Some(value("--media-address")?),
            "--sip-srtp" => overrides.sip_srtp = Some(value("--sip-srtp")?),
            "--database" => overrides.database = Some(value("--database")?),
            "--log-level" => overrides.log_level = Some(value("--log-level")?),
            "--metrics-listen" => overrides.metrics_listen = Some(value("--metrics-listen")?),
            "--msrp-listen" => overrides.msrp_listen = Some(value("--msrp-listen")?),
            "--check-config" => check_only = true,
            "--trace-websocket" => overrides.trace_websocket = true,
            other => return Err(format!("unknown option '{other}' (see --help)")),
        }
    }
    Ok(Cli::Run {
        config,
        overrides: Box::new(overrides),
        check_only,
    })
}

fn main() -> ExitCode {
    let (config_path, overrides, check_only) = match parse_args(std::env::args().skip(1)) {
        Ok(Cli::Run {
            config,
            overrides,
            check_only,
        }) => (config, overrides, check_only),
        Ok(Cli::Help) => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Ok(Cli::Version) => {
            println!("sylk-gateway {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("sylk-gateway: {e}");
            return ExitCode::from(2);
        }
    };
    let config = match Config::load(config_path.as_deref(), overrides.as_ref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("sylk-gateway: {e}");
            return ExitCode::from(2);
        }
    };
    if check_only {
        println!("configuration OK");
        return ExitCode::SUCCESS;
    }
    logging::init(config.log.level, config.log.format);
    let app::App {
        mut reactor,
        addresses,
    } = match app::build(&config) {
        Ok(app) => app,
        Err(e) => {
            log::error!("startup failed: {e}");
            return ExitCode::from(1);
        }
    };
    // One machine-readable line per listener on stdout, so scripts and tests started with
    // port 0 learn the real address. Write errors are ignored: a closed stdout must not
    // take the gateway down (println! would panic).
    let bound = addresses;
    let mut lines = Vec::new();
    if let Some(a) = bound.ws {
        lines.push(format!("listening ws://{a}/webrtcgateway/ws"));
    }
    if let Some(a) = bound.wss {
        lines.push(format!("listening wss://{a}/webrtcgateway/ws"));
    }
    if let Some(a) = bound.sip {
        lines.push(format!("listening sip udp+tcp {a}"));
    }
    if let Some(a) = bound.sip_tls {
        lines.push(format!("listening sip tls {a}"));
    }
    if let Some(a) = bound.metrics {
        lines.push(format!("listening metrics http://{a}/metrics"));
    }
    if let Some(a) = bound.msrp.plain {
        lines.push(format!("listening msrp tcp {a}"));
    }
    if let Some(a) = bound.msrp.tls {
        lines.push(format!("listening msrp tls {a}"));
    }
    let mut out = std::io::stdout().lock();
    for line in lines {
        let _ = writeln!(out, "{line}");
    }
    let _ = out.flush();
    drop(out);
    // SIGHUP re-reads the same file with the same command-line overrides.
    reactor.set_reload(Box::new(move || {
        Config::load(config_path.as_deref(), &overrides).map_err(|e| e.to_string())
    }));
    match reactor.run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            log::error!("event loop failed: {e}");
            ExitCode::from(1)
        }
    }
}
