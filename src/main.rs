//! `bedside`: one binary for the whole product.
//!
//! - `bedside serve`: run API + SFU + web client with embedded defaults and print the URL.
//! - `bedside api` / `bedside sfu`: the control plane and a media node apart, for clusters.
//! - `bedside token`: mint a join token from the local key (development and operators).
//! - `bedside robot`: the headless robot agent.
//! - `bedside admin create`: create the first administrator.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use bedside::agent::{sink::Sink, AgentOptions};
use bedside::http_server::HttpLimits;
use bedside::media_node::MediaNodeOptions;
use bedside::node_link::NodeLink;
use bedside::serve::{Parts, ServeOptions};
use bedside_api::{create_admin, Api, ApiConfig};
use bedside_proto::{Claims, Role};
use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Parser)]
#[command(
    name = "bedside",
    version,
    about = "Media server for hospital telepresence robots"
)]
struct Cli {
    /// Log format.
    #[arg(
        long,
        global = true,
        env = "BEDSIDE_LOG_FORMAT",
        default_value = "text"
    )]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run everything in one process (SQLite in the data dir unless DATABASE_URL is set).
    Serve(ServeArgs),
    /// Run the API and web client only (the control plane of a cluster).
    Api(ServeArgs),
    /// Run a media node only (WHIP/WHEP), verifying tokens with the API's JWKS.
    Sfu(SfuArgs),
    /// Mint a join token from the local signing key (for development and operators).
    Token(TokenArgs),
    /// Run the headless robot agent: publish video, obey control frames, watchdog.
    Robot(RobotArgs),
    /// Administration.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
}

#[derive(Args)]
struct DataDir {
    /// Where the SQLite database and the signing key live.
    #[arg(long, env = "BEDSIDE_DATA_DIR", default_value = "./bedside-data")]
    data_dir: PathBuf,
}

/// Media-plane flags, the same for `serve` and `sfu`.
#[derive(Args)]
struct MediaArgs {
    /// Address the media UDP sockets bind to.
    #[arg(long, env = "BEDSIDE_BIND_IP", default_value = "127.0.0.1")]
    bind_ip: IpAddr,
    /// Address advertised in ICE candidates (NAT 1:1); defaults to the bind address.
    #[arg(long, env = "BEDSIDE_PUBLIC_IP")]
    public_ip: Option<IpAddr>,
    /// First media UDP port; worker i uses port + i.
    #[arg(long, env = "BEDSIDE_UDP_PORT", default_value_t = 50000)]
    udp_port: u16,
    /// Media workers (one UDP socket each); defaults to the number of cores.
    #[arg(long, env = "BEDSIDE_WORKERS")]
    workers: Option<usize>,
    /// Watching sessions one media worker accepts before answering 503 (robots and the
    /// doctor who may drive are always let in); see docs/operations.md.
    #[arg(long, env = "BEDSIDE_MAX_VIEWERS_PER_WORKER", default_value_t = bedside_sfu::config::DEFAULT_MAX_VIEWERS_PER_WORKER)]
    max_viewers_per_worker: usize,
    /// TCP port for ICE-TCP (clients that cannot send UDP); 0: any free port.
    #[arg(long, env = "BEDSIDE_ICE_TCP_PORT", default_value_t = 50000)]
    ice_tcp_port: u16,
    /// Do not listen for ICE-TCP.
    #[arg(long, env = "BEDSIDE_NO_ICE_TCP")]
    no_ice_tcp: bool,
    /// The TURN servers' relay addresses (comma-separated): sessions from them are reported
    /// as relayed.
    #[arg(long, env = "BEDSIDE_TURN_RELAY_IPS", value_delimiter = ',')]
    turn_relay_ips: Vec<IpAddr>,
}

impl MediaArgs {
    /// The media-plane settings these flags describe.
    fn media(&self) -> bedside::serve::MediaOptions {
        bedside::serve::MediaOptions {
            bind_ip: self.bind_ip,
            public_ip: self.public_ip,
            udp_port: self.udp_port,
            workers: self.workers.unwrap_or_else(cores),
            max_viewers_per_worker: self.max_viewers_per_worker,
            ice_tcp_port: (!self.no_ice_tcp).then_some(self.ice_tcp_port),
            turn_relay_ips: self.turn_relay_ips.clone(),
        }
    }
}

/// HTTP listener flags, the same for every server subcommand.
#[derive(Args)]
struct HttpArgs {
    /// Serve /metrics on this address only (e.g. 10.0.0.5:9100), not on the public port.
    #[arg(long, env = "BEDSIDE_METRICS_ADDR")]
    metrics_addr: Option<SocketAddr>,
    /// Open HTTP connections at most; more are closed at once.
    #[arg(long, env = "BEDSIDE_MAX_CONNECTIONS", default_value_t = 1024)]
    max_connections: usize,
    /// Seconds a client has to send its request headers.
    #[arg(long, env = "BEDSIDE_HEADER_TIMEOUT_SECS", default_value_t = 10)]
    header_timeout_secs: u64,
}

impl HttpArgs {
    fn limits(&self) -> HttpLimits {
        HttpLimits {
            header_timeout: Duration::from_secs(self.header_timeout_secs.max(1)),
            max_connections: self.max_connections.max(1),
        }
    }
}

#[derive(Args)]
struct ServeArgs {
    #[command(flatten)]
    data: DataDir,
    /// HTTP address (API, WHIP/WHEP, web client, /metrics).
    #[arg(long, env = "BEDSIDE_HTTP", default_value = "127.0.0.1:8080")]
    http: SocketAddr,
    #[command(flatten)]
    http_opts: HttpArgs,
    #[command(flatten)]
    media: MediaArgs,
    /// Base URL clients reach this server at (for WHIP/WHEP URLs handed out by the API).
    #[arg(long, env = "BEDSIDE_PUBLIC_URL")]
    public_url: Option<String>,
    /// A TURN server URL handed to clients with each token (repeat, or comma-separated), e.g.
    /// turns:turn.example.org:443?transport=tcp; needs --turn-secret. See docs/operations.md.
    #[arg(long = "turn-url", env = "BEDSIDE_TURN_URLS", value_delimiter = ',')]
    turn_urls: Vec<String>,
    /// The TURN server's static-auth-secret (coturn use-auth-secret), at least 16 characters.
    #[arg(long, env = "BEDSIDE_TURN_SECRET", hide_env_values = true)]
    turn_secret: Option<String>,
}

#[derive(Args)]
struct SfuArgs {
    /// HTTP address for WHIP/WHEP, /metrics and /healthz.
    #[arg(long, env = "BEDSIDE_HTTP", default_value = "127.0.0.1:8090")]
    http: SocketAddr,
    #[command(flatten)]
    http_opts: HttpArgs,
    #[command(flatten)]
    media: MediaArgs,
    /// The API's base URL, e.g. http://bedside-api:8080: the node channel (revocations, lease
    /// revokes, latched rooms in; room events out) and, by default, the JWKS.
    #[arg(long, env = "BEDSIDE_API_URL")]
    api_url: Option<String>,
    /// The cluster's node secret (the API's BEDSIDE_NODE_SECRET); needed with --api-url.
    #[arg(long, env = "BEDSIDE_NODE_SECRET", hide_env_values = true)]
    node_secret: Option<String>,
    /// The API's JWKS document (default: {api-url}/.well-known/jwks.json).
    #[arg(long, env = "BEDSIDE_JWKS_URL")]
    jwks_url: Option<String>,
    /// How often to re-read the JWKS (key rotation), seconds.
    #[arg(long, default_value_t = 300)]
    jwks_refresh_secs: u64,
}

#[derive(Args)]
struct TokenArgs {
    #[command(flatten)]
    data: DataDir,
    /// Room (robot id).
    #[arg(long)]
    room: String,
    #[arg(long)]
    role: Role,
    /// Subject: an opaque user or robot id (random if omitted).
    #[arg(long)]
    sub: Option<String>,
    /// Lifetime in seconds.
    #[arg(long, default_value_t = 3600)]
    ttl: u64,
    /// Allow this doctor to take the control lease.
    #[arg(long)]
    can_control: bool,
}

#[derive(Args)]
struct RobotArgs {
    /// Bedside server base URL.
    #[arg(long, env = "BEDSIDE_SERVER", default_value = "http://127.0.0.1:8080")]
    server: String,
    /// The robot's id (its room).
    #[arg(long, env = "BEDSIDE_ROBOT_ID")]
    room: String,
    /// A publish token (e.g. from `bedside token --role robot`).
    #[arg(long, env = "BEDSIDE_ROBOT_TOKEN", conflicts_with = "credential")]
    token: Option<String>,
    /// The robot's credential: the agent asks the API for its publish token.
    #[arg(long, env = "BEDSIDE_ROBOT_CREDENTIAL")]
    credential: Option<String>,
    /// Video fixture to loop (.ivf VP8 or .h264 Annex B); default: bundled test pattern.
    #[arg(long)]
    fixture: Option<PathBuf>,
    /// Stop when no valid control frame arrived for this long.
    #[arg(long, default_value_t = 300)]
    deadman_ms: u64,
    /// Where drive commands go: stdout, udp:HOST:PORT or unix:PATH.
    #[arg(long, default_value = "stdout")]
    sink: Sink,
    /// Local address for media: an IP address, or `auto`: the one the routing table picks
    /// towards the server, followed as it changes (a roam onto another network restarts ICE
    /// from the new address and keeps the session).
    #[arg(long, env = "BEDSIDE_LOCAL_IP", default_value = "auto")]
    local_ip: LocalIp,
    /// Give up after this many failed connection attempts in a row (0: keep trying).
    #[arg(long, default_value_t = 0)]
    max_attempts: u32,
    /// Receive the driving doctor's camera and the doctors' voices as plain RTP: video to this
    /// address, audio slot n to its port + 2 + 2n (for the robot's own screen and speaker).
    #[arg(long, env = "BEDSIDE_MEDIA_OUT")]
    media_out: Option<SocketAddr>,
    /// Write the SDP file describing those streams here (`ffplay -protocol_whitelist
    /// file,udp,rtp -i FILE` plays them).
    #[arg(long, env = "BEDSIDE_MEDIA_SDP", requires = "media_out")]
    media_sdp: Option<PathBuf>,
    /// How to reach the media node: udp, or tcp (ICE-TCP) where the network blocks UDP.
    #[arg(long, env = "BEDSIDE_TRANSPORT", default_value = "udp")]
    transport: Transport,
}

/// `--local-ip`: an address, or `auto` (`None`).
#[derive(Clone, Copy)]
struct LocalIp(Option<IpAddr>);

impl std::str::FromStr for LocalIp {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "auto" {
            return Ok(LocalIp(None));
        }
        s.parse()
            .map(|ip| LocalIp(Some(ip)))
            .map_err(|_| format!("an IP address or `auto`, not {s:?}"))
    }
}

#[derive(Clone, Copy, ValueEnum)]
enum Transport {
    Udp,
    Tcp,
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Create an administrator. The password is read from BEDSIDE_ADMIN_PASSWORD or stdin.
    Create {
        #[command(flatten)]
        data: DataDir,
        #[arg(long)]
        username: String,
        #[arg(long, default_value = "Administrator")]
        display_name: String,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    match cli.command {
        Command::Serve(a) => serve(a, Parts::All).await,
        Command::Api(a) => serve(a, Parts::Api).await,
        Command::Sfu(a) => {
            let api_url = a.api_url.map(|u| u.trim_end_matches('/').to_string());
            let jwks_url = match (a.jwks_url, &api_url) {
                (Some(url), _) => url,
                (None, Some(api)) => format!("{api}/.well-known/jwks.json"),
                (None, None) => anyhow::bail!("give --api-url (or at least --jwks-url)"),
            };
            let link = match (api_url, a.node_secret.filter(|s| !s.is_empty())) {
                (Some(api_url), Some(secret)) => Some(NodeLink { api_url, secret }),
                (Some(_), None) => anyhow::bail!(
                    "--api-url needs the node secret (--node-secret or BEDSIDE_NODE_SECRET)"
                ),
                (None, _) => None,
            };
            bedside::media_node::run_media_node(MediaNodeOptions {
                http: a.http,
                media: a.media.media(),
                metrics_addr: a.http_opts.metrics_addr,
                http_limits: a.http_opts.limits(),
                jwks_url,
                jwks_refresh: Duration::from_secs(a.jwks_refresh_secs.max(10)),
                link,
            })
            .await
        }
        Command::Token(a) => {
            let api = Api::open(ApiConfig::from_env(a.data.data_dir, String::new())?).await?;
            let sub = a.sub.unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
            let mut claims = Claims::new(sub, a.room, a.role, a.ttl);
            claims.can_control = a.can_control && a.role == Role::Doctor;
            println!("{}", api.signer().sign(&claims)?);
            api.shutdown().await;
            Ok(())
        }
        Command::Robot(a) => {
            bedside::agent::run(AgentOptions {
                server: a.server.trim_end_matches('/').to_string(),
                room: a.room,
                token: a.token,
                credential: a.credential,
                fixture: a.fixture,
                deadman: Duration::from_millis(a.deadman_ms),
                sink: a.sink,
                local_ip: a.local_ip.0,
                max_attempts: a.max_attempts,
                transport: match a.transport {
                    Transport::Udp => bedside_sfu::client::TransportKind::Udp,
                    Transport::Tcp => bedside_sfu::client::TransportKind::Tcp,
                },
                screen: a
                    .media_out
                    .map(|addr| bedside::agent::screen::ScreenOptions {
                        addr,
                        sdp: a.media_sdp,
                    }),
            })
            .await
        }
        Command::Admin {
            command:
                AdminCommand::Create {
                    data,
                    username,
                    display_name,
                },
        } => {
            let password = match std::env::var("BEDSIDE_ADMIN_PASSWORD") {
                Ok(p) if !p.is_empty() => p,
                _ => {
                    eprintln!("password (read from stdin):");
                    let mut line = String::new();
                    std::io::stdin()
                        .read_line(&mut line)
                        .context("reading the password")?;
                    line.trim_end_matches(['\r', '\n']).to_string()
                }
            };
            let config = ApiConfig::from_env(data.data_dir, String::new())?;
            let id = create_admin(&config, &username, &display_name, &password).await?;
            println!("created administrator {id}");
            Ok(())
        }
    }
}

fn cores() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

async fn serve(a: ServeArgs, parts: Parts) -> anyhow::Result<()> {
    let urls: Vec<String> = a
        .turn_urls
        .into_iter()
        .filter(|u| !u.trim().is_empty())
        .collect();
    let urls = (!urls.is_empty()).then(|| urls.join(","));
    let turn = bedside_api::turn_from(urls, a.turn_secret.filter(|s| !s.is_empty()))?;
    let running = bedside::serve::start_configured(
        ServeOptions {
            http: a.http,
            media: a.media.media(),
            data_dir: a.data.data_dir,
            public_url: a.public_url,
            metrics_addr: a.http_opts.metrics_addr,
            http_limits: a.http_opts.limits(),
        },
        parts,
        |config| config.turn = turn,
    )
    .await?;
    println!(
        "Bedside is running. Open http://{}/ in a browser.",
        running.http
    );
    running.serve_until(bedside::serve::shutdown_signal()).await
}

fn init_logging(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,str0m=warn,sqlx=warn,dimpl=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}
