//! `sandbox serve`, `sandbox serve tokens --rotate NAME`, `sandbox login`.

use std::io::Write;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{ExitCode, Stdio};
use std::sync::Arc;

use super::output::{Failure, Stream, stream};
use crate::serve::class::{Class, read_names};
use crate::serve::helper::Helper;
use crate::serve::tokens::{self, TEACHER};

#[derive(clap::Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct ServeArgs {
    #[command(subcommand)]
    pub command: Option<ServeCommand>,
    /// The profile of the instances (default with --lab: the lab's own).
    pub profile: Option<String>,
    /// The students: one name a line (`#` starts a comment).
    #[arg(long, value_name = "FILE", required = true)]
    pub names_from: Option<PathBuf>,
    /// The lab the class works on: its instructions beside the terminal, its checks.
    #[arg(long)]
    pub lab: Option<String>,
    /// Where to listen (loopback unless told otherwise).
    #[arg(long, default_value = "127.0.0.1:8080", value_name = "ADDR:PORT")]
    pub listen: String,
    /// Serve HTTPS with this certificate chain (PEM).
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The certificate's private key (PEM).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Another origin browsers reach this server by (behind a reverse proxy:
    /// https://class.example.org). The first one is used in the printed links.
    #[arg(long = "origin", value_name = "URL")]
    pub origins: Vec<String>,
    /// The unprivileged user the web process runs as.
    #[arg(long, default_value = "nobody")]
    pub user: String,
    /// Print the links as JSON lines: {"name", "role", "url"}.
    #[arg(long)]
    pub json: bool,
    /// Only the ssh way in: no web server, no port, no links; the helper
    /// answers `sandbox login` alone.
    #[arg(long, conflicts_with_all = ["tls_cert", "origins", "json"])]
    pub ssh_only: bool,
    /// The socket `sandbox login` (ssh) connects to.
    #[arg(long, env = "SANDBOX_LOGIN_SOCKET", default_value = crate::serve::LOGIN_SOCKET, value_name = "PATH")]
    pub login_socket: PathBuf,
}

#[derive(clap::Subcommand)]
pub enum ServeCommand {
    /// Replace a person's login token; their sessions end, in a running serve too.
    Tokens {
        /// A student's name, or `teacher`.
        #[arg(long, value_name = "NAME")]
        rotate: String,
        /// Print the new link as one JSON object: {name, url}.
        #[arg(long)]
        json: bool,
    },
}

fn need_root(what: &str) -> Result<(), Failure> {
    if nix::unistd::geteuid().is_root() {
        return Ok(());
    }
    Err(Failure {
        message: format!(
            "{what} needs root: it starts the class's instances and opens shells in them\n  fix: run it with sudo (the web part drops to --user)"
        ),
    })
}

pub fn serve(args: ServeArgs) -> Result<ExitCode, Failure> {
    if let Some(ServeCommand::Tokens { rotate, json }) = args.command {
        return rotate_token(&rotate, json);
    }
    if !cfg!(feature = "serve") {
        return web("");
    }
    need_root("sandbox serve")?;
    let state = crate::state::home();
    let lab = args.lab.as_deref().map(|wanted| crate::lab::find(crate::lab::extra_folder(None).as_deref(), wanted)).transpose()?;
    let profile = match (&args.profile, &lab) {
        (Some(profile), _) => profile.clone(),
        (None, Some(lab)) => lab.profile_spec(&state).map_err(crate::state::at(&state))?,
        (None, None) => return Err(Failure { message: "no profile\n  fix: sandbox serve PROFILE --names-from FILE, or --lab LAB".into() }),
    };
    let names_from = args.names_from.as_deref().ok_or_else(|| Failure { message: "--names-from FILE is needed".into() })?;
    let students = read_names(names_from, lab.as_ref()).map_err(|message| Failure { message })?;
    let listen: SocketAddr = args.listen.parse().map_err(|_| Failure {
        message: format!("--listen {}: not an address and port\n  fix: e.g. --listen 127.0.0.1:8080 or --listen 0.0.0.0:443", args.listen),
    })?;
    let tls = args.tls_cert.is_some();
    let origins = origins_for(listen, tls, &args.origins)?;
    let user = nix::unistd::User::from_name(&args.user).ok().flatten().ok_or_else(|| Failure {
        message: format!("--user {}: no such user\n  fix: name an unprivileged user (nobody, www-data)", args.user),
    })?;
    if user.uid.is_root() {
        return Err(Failure { message: "--user must not be root: the web process is the one that talks to the network".into() });
    }
    // Everything that needs root and may fail is done before the port is taken.
    let open = |path: &PathBuf| {
        std::fs::File::open(path).map_err(|e| Failure { message: format!("{}: {e}\n  fix: give a readable PEM file", path.display()) })
    };
    let tls_files = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some((open(cert)?, open(key)?)),
        _ => None,
    };
    if args.ssh_only {
        return serve_ssh_only(&args, profile, lab, students, &state);
    }
    let listener = std::net::TcpListener::bind(listen)
        .map_err(|e| Failure { message: format!("cannot listen on {listen}: {e}\n  fix: choose a free port with --listen ADDR:PORT") })?;
    let login_listener = crate::serve::login::listen(&args.login_socket)
        .map_err(|e| Failure { message: format!("{}: {e}", args.login_socket.display()) })?;

    let exe = std::env::current_exe()?;
    let class = Class { profile, lab, students: students.clone(), exe: exe.clone() };
    let helper = Arc::new(Helper::new(class, &state)?);
    writeln!(stream(Stream::Stderr), "starting the instances of {} students (running ones are adopted)", students.len())?;
    let started = helper.start(&students).map_err(|e| Failure { message: e.to_string() })?;
    writeln!(stream(Stream::Stderr), "{started}")?;

    let base = origins[0].clone();
    tokens::ensure_dir(&state)?;
    tokens::write_private(&tokens::dir(&state).join("url"), &base)?;
    let mut people: Vec<String> = students.clone();
    people.push(TEACHER.into());
    let issued = tokens::issue_missing(&state, &people)?;
    print_links(&base, &issued, args.json)?;
    let kept = people.len() - issued.len();
    if kept > 0 {
        writeln!(
            stream(Stream::Stderr),
            "{kept} people keep the links they were given before (`sandbox serve tokens --rotate NAME` makes a new one)"
        )?;
    }

    let (helper_end, web_end) = crate::serve::protocol::pair()?;
    let config = crate::serve::WebConfig {
        listener_fd: listener.as_raw_fd(),
        helper_fd: web_end.as_raw_fd(),
        tls_cert_fd: tls_files.as_ref().map(|(c, _)| c.as_raw_fd()),
        tls_key_fd: tls_files.as_ref().map(|(_, k)| k.as_raw_fd()),
        origins,
        uid: user.uid.as_raw(),
        gid: user.gid.as_raw(),
    };
    let mut keep = vec![config.listener_fd, config.helper_fd];
    keep.extend(config.tls_cert_fd);
    keep.extend(config.tls_key_fd);
    let parent = std::process::id() as i32;
    let mut web = std::process::Command::new(&exe);
    web.arg("serve-web").arg("--config").arg(serde_json::to_string(&config)?).stdin(Stdio::null());
    // SAFETY: only system calls between fork and exec.
    unsafe {
        web.pre_exec(move || {
            for fd in &keep {
                if libc::fcntl(*fd, libc::F_SETFD, 0) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            // The web process ends with this one (a `kill -9` of serve included).
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 || libc::getppid() != parent {
                return Err(std::io::Error::other("serve ended"));
            }
            Ok(())
        });
    }
    let mut child = web.spawn()?;
    drop((listener, web_end, tls_files));
    writeln!(stream(Stream::Stderr), "serving {base} (the web part as {}); ssh logins at {}", user.name, args.login_socket.display())?;

    let logins = Arc::clone(&helper);
    std::thread::spawn(move || logins.serve_logins(login_listener));
    let channel = Arc::clone(&helper);
    std::thread::spawn(move || channel.serve_channel(helper_end));
    let status = child.wait()?;
    let _ = std::fs::remove_file(&args.login_socket);
    Err(Failure { message: format!("the web process ended ({status})") })
}

/// `serve --ssh-only`: the instances and the login socket, nothing on the network.
fn serve_ssh_only(
    args: &ServeArgs,
    profile: String,
    lab: Option<crate::lab::Lab>,
    students: Vec<String>,
    state: &std::path::Path,
) -> Result<ExitCode, Failure> {
    let login_listener = crate::serve::login::listen(&args.login_socket)
        .map_err(|e| Failure { message: format!("{}: {e}", args.login_socket.display()) })?;
    let class = Class { profile, lab, students: students.clone(), exe: std::env::current_exe()? };
    let helper = Arc::new(Helper::new(class, state)?);
    writeln!(stream(Stream::Stderr), "starting the instances of {} students (running ones are adopted)", students.len())?;
    let started = helper.start(&students).map_err(|e| Failure { message: e.to_string() })?;
    writeln!(stream(Stream::Stderr), "{started}")?;
    writeln!(stream(Stream::Stderr), "serving ssh logins at {}", args.login_socket.display())?;
    helper.serve_logins(login_listener);
    Ok(ExitCode::SUCCESS)
}

/// The origins a browser's requests may carry: the listen address itself (and
/// `localhost` for loopback), then every `--origin`. An address that listens
/// everywhere (0.0.0.0) has no name of its own, so it needs `--origin`.
fn origins_for(listen: SocketAddr, tls: bool, extra: &[String]) -> Result<Vec<String>, Failure> {
    let scheme = if tls { "https" } else { "http" };
    let mut origins = Vec::new();
    for origin in extra {
        let origin = origin.trim_end_matches('/');
        let valid = (origin.starts_with("http://") || origin.starts_with("https://")) && !origin.split_once("://").unwrap().1.contains('/');
        if !valid {
            return Err(Failure {
                message: format!("--origin {origin}: not an origin\n  fix: scheme and host only, e.g. https://class.example.org"),
            });
        }
        origins.push(origin.to_string());
    }
    let port = listen.port();
    let default_port = (tls && port == 443) || (!tls && port == 80);
    let with_port = |host: String| if default_port { format!("{scheme}://{host}") } else { format!("{scheme}://{host}:{port}") };
    if listen.ip().is_unspecified() {
        if origins.is_empty() {
            return Err(Failure {
                message: format!(
                    "--listen {listen} has no name browsers can use\n  fix: add --origin {scheme}://HOST{} (the name students type)",
                    if default_port { String::new() } else { format!(":{port}") }
                ),
            });
        }
    } else {
        let host = match listen.ip() {
            std::net::IpAddr::V6(ip) => format!("[{ip}]"),
            ip => ip.to_string(),
        };
        origins.push(with_port(host));
        if listen.ip().is_loopback() {
            origins.push(with_port("localhost".into()));
        }
    }
    Ok(origins)
}

fn print_links(base: &str, issued: &[(String, String)], json: bool) -> Result<(), Failure> {
    let mut out = stream(Stream::Stdout);
    for (name, token) in issued {
        let url = format!("{base}/?token={token}");
        if json {
            let role = if name == TEACHER { "teacher" } else { "student" };
            writeln!(out, "{}", serde_json::json!({"name": name, "role": role, "url": url}))?;
        } else {
            writeln!(out, "{name} {url}")?;
        }
    }
    out.flush()?;
    Ok(())
}

fn rotate_token(name: &str, json: bool) -> Result<ExitCode, Failure> {
    need_root("sandbox serve tokens")?;
    let state = crate::state::home();
    let known = tokens::read_tokens(&state)?;
    if !known.contains_key(name) {
        return Err(Failure {
            message: format!(
                "nobody called `{name}` has a token\n  fix: `sandbox serve` gives every student of --names-from one, and the teacher"
            ),
        });
    }
    let base: String = std::fs::read(tokens::dir(&state).join("url"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_else(|| "http://127.0.0.1:8080".into());
    let token = tokens::rotate(&state, name)?;
    print_links(&base, &[(name.to_string(), token)], json)?;
    Ok(ExitCode::SUCCESS)
}

pub fn login() -> Result<ExitCode, Failure> {
    crate::serve::login::login()
}

#[cfg(feature = "serve")]
pub fn web(config: &str) -> Result<ExitCode, Failure> {
    crate::serve::web::main(config)
}

#[cfg(not(feature = "serve"))]
pub fn web(_config: &str) -> Result<ExitCode, Failure> {
    Err(Failure { message: "this sandbox was built without the `serve` feature\n  fix: cargo build (the default features)".into() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_follow_the_listen_address() {
        let local: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        assert_eq!(origins_for(local, false, &[]).unwrap(), ["http://127.0.0.1:8080", "http://localhost:8080"]);
        let everywhere: SocketAddr = "0.0.0.0:443".parse().unwrap();
        assert!(origins_for(everywhere, true, &[]).is_err(), "0.0.0.0 needs --origin");
        assert_eq!(origins_for(everywhere, true, &["https://class.example.org/".into()]).unwrap(), ["https://class.example.org"]);
        assert!(origins_for(local, false, &["class.example.org".into()]).is_err());
        assert!(origins_for(local, false, &["https://a/b".into()]).is_err());
    }
}
