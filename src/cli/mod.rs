//! The command line: clap definitions and dispatch. Each command lives in its
//! own module and returns an exit status or a `Failure` (one clear message,
//! exit status 125).

mod build;
mod complete;
mod explain;
mod export;
mod info;
mod instances;
mod lab;
mod output;
pub mod overrides;
mod run;
mod sbom;
mod serve;
mod verify;
mod why;

#[cfg(test)]
mod tests;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand, ValueHint};

pub use output::{ColorChoice, Failure};
use overrides::Overrides;

/// Build identical lab environments and run students inside them.
#[derive(Parser)]
#[command(name = "sandbox", version, about, propagate_version = true)]
pub struct Cli {
    /// When to color the output: auto (a terminal, unless NO_COLOR is set; CLICOLOR_FORCE forces), always or never.
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto, value_name = "WHEN")]
    color: ColorChoice,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Build the profile's rootfs (or reuse it from the store); print its digest and path.
    Build {
        /// A ready profile's name, a path to a .toml file, or an imported image.
        #[arg(default_value = "shell", add = complete::profiles())]
        profile: String,
        /// Also write a plain copy of the rootfs to DIR (new or empty), for chroot, bwrap or tar.
        #[arg(long, value_name = "DIR", value_hint = ValueHint::DirPath)]
        out: Option<PathBuf>,
        /// Fail, building nothing, when the result would differ from PROFILE.lock.
        #[arg(long)]
        locked: bool,
        /// Print one JSON object: {name, digest, path, entries, bytes, seconds, reused}.
        #[arg(long)]
        json: bool,
    },
    /// Enter the profile's environment and run its command (or CMD) there: `sandbox run shell bash`.
    Run(RunArgs),
    /// Start instances in the background, one per name, in parallel.
    Start {
        /// A ready profile's name, a path to a .toml file, or an imported image.
        #[arg(add = complete::profiles())]
        profile: String,
        /// An instance's name: any script (`내이름`), mapped to a safe id `ps` shows (repeatable).
        #[arg(long = "name", value_name = "NAME", required_unless_present = "names_from", add = complete::instances())]
        names: Vec<String>,
        /// A file with one instance name a line (`#` starts a comment).
        #[arg(long, value_name = "FILE", value_hint = ValueHint::FilePath)]
        names_from: Option<PathBuf>,
        #[command(flatten)]
        cgroup: CgroupArgs,
    },
    /// Run a command in a running instance (the same namespaces, root, user and limits).
    Exec {
        /// The running instance (see `sandbox ps`).
        #[arg(add = complete::instances())]
        name: String,
        #[command(flatten)]
        terminal: TerminalFlags,
        #[command(flatten)]
        cgroup: CgroupArgs,
        /// The command to run instead of the profile's (`sandbox exec alice ls -l`).
        #[arg(value_name = "CMD", allow_hyphen_values = true)]
        command: Vec<String>,
        /// The command, after `--` (the older spelling, still accepted).
        #[arg(last = true, value_name = "CMD", hide = true)]
        after_dashes: Vec<String>,
    },
    /// List the instances: state, PID, uptime, memory and pids from their cgroup.
    Ps {
        /// Print one JSON object: {instances: [{name, profile, state, pid, ...}]}.
        #[arg(long)]
        json: bool,
    },
    /// Stop instances (SIGTERM to PID 1, SIGKILL after 5 seconds).
    Stop {
        /// The instances to stop.
        #[arg(required = true, add = complete::instances())]
        names: Vec<String>,
    },
    /// Drop instances' writable layers: back to the pristine environment.
    Reset {
        /// The instances to reset (stopped ones).
        #[arg(required = true, add = complete::instances())]
        names: Vec<String>,
    },
    /// Remove instances and their layers.
    Rm {
        /// The instances to remove.
        #[arg(required = true, add = complete::instances())]
        names: Vec<String>,
    },
    /// What the student changed: A added, C changed, D deleted (names escaped for the terminal).
    Diff {
        /// The instance to compare with its environment.
        #[arg(add = complete::instances())]
        name: String,
        /// One JSON object: {name, id, changes: [{change, path: {text} or {bytes: base64}}]}, exact.
        #[arg(long)]
        json: bool,
    },
    /// Run the same steps as `run`, one at a time, showing what each changed.
    Explain {
        /// A ready profile's name, a path to a .toml file, or an imported image.
        #[arg(default_value = "shell", add = complete::profiles())]
        profile: String,
        /// chroot: the classic jail; namespace: full isolation (default: the profile's [run] mode).
        #[arg(long, value_enum)]
        mode: Option<ModeArg>,
        /// Wait for Enter before each step (a class at the teacher's pace).
        #[arg(long)]
        step: bool,
        /// Show the plan with its texts and shell equivalents; run nothing.
        #[arg(long)]
        dry_run: bool,
        /// en or ko (default: from LANG).
        #[arg(long, value_parser = ["en", "ko"])]
        lang: Option<String>,
        /// One JSON object a line: each step's id, command, system call, result and observations.
        #[arg(long)]
        json: bool,
        /// Tell how the rootfs was assembled instead.
        #[arg(long)]
        build: bool,
        /// The command to run instead of the profile's.
        #[arg(value_name = "CMD", allow_hyphen_values = true)]
        command: Vec<String>,
        /// The command, after `--` (the older spelling, still accepted).
        #[arg(last = true, value_name = "CMD", hide = true)]
        after_dashes: Vec<String>,
    },
    /// Validate a profile (syntax, values, programs, locales, zones) without building.
    Check {
        /// A ready profile's name, a path to a .toml file, or an imported image.
        #[arg(default_value = "shell", add = complete::profiles())]
        profile: String,
        /// Print one JSON object: {name, layers, programs, entries, bytes, notes}.
        #[arg(long)]
        json: bool,
    },
    /// Re-hash stored rootfs trees (and with --all every blob) against their digests; exit 1 when something is corrupted.
    Verify {
        /// A ready profile's name or a path to a .toml file (default: shell).
        #[arg(conflicts_with = "all")]
        profile: Option<String>,
        /// Every tree and blob in the store.
        #[arg(long)]
        all: bool,
    },
    /// Explain why a file is in the rootfs: the chain of reasons that put it there.
    Why {
        /// A path inside the rootfs, e.g. /usr/lib/x86_64-linux-gnu/libpcre2-8.so.0.
        path: String,
        /// A ready profile's name, a path to a .toml file, or an imported image.
        #[arg(default_value = "shell", add = complete::profiles())]
        profile: String,
        /// Print one JSON object: {path, located, reasons: [...]}.
        #[arg(long)]
        json: bool,
    },
    /// Labs: exercises with automatic checks.
    Lab {
        /// A folder of extra labs (also SANDBOX_LABS); only its owner (root) may write it.
        #[arg(long, global = true, value_name = "DIR")]
        labs: Option<PathBuf>,
        /// en or ko (default: from LANG).
        #[arg(long, global = true, value_parser = ["en", "ko"])]
        lang: Option<String>,
        #[command(subcommand)]
        command: LabCommand,
    },
    /// Remove what crashed runs left behind (cgroups, abandoned builds).
    Gc,
    /// List the ready profiles built into this binary.
    Profiles,
    /// Check what this machine supports (namespaces, cgroups, overlayfs) and what is missing.
    Doctor {
        /// Print one JSON object: {checks: [{id, status, detail, fix}]}.
        #[arg(long)]
        json: bool,
    },
    /// Print a shell completion script (`source <(sandbox completions bash)`); it completes profile, instance and lab names.
    Completions {
        /// The shell to complete for.
        #[arg(value_parser = ["bash", "zsh", "fish", "elvish", "powershell"])]
        shell: String,
    },
    /// Print the manual page (roff): `sandbox man | man -l -`.
    Man,
    /// Write the environment as an OCI image, a `docker load` archive, a runtime bundle or a Kubernetes manifest.
    Export(export::ExportArgs),
    /// Import an OCI image (layout or archive) into the store: then `sandbox run IMAGE`.
    Import(export::ImportArgs),
    /// Print a software bill of materials (SPDX 2.3 JSON) of the profile's rootfs.
    Sbom(sbom::SbomArgs),
    /// Serve the class: an instance per student, a web terminal each, the teacher's dashboard.
    Serve(serve::ServeArgs),
    /// The ssh way into your own instance (for sshd's ForceCommand; needs a running serve).
    Login,
    /// (started by `serve`) the unprivileged web process.
    #[command(hide = true)]
    ServeWeb {
        /// The web process's settings (JSON), written by `serve` for it.
        #[arg(long)]
        config: String,
    },
}

/// `sandbox run [PROFILE] [CMD...]`, with the flags Docker users type.
#[derive(clap::Args)]
struct RunArgs {
    /// A ready profile's name, a path to a .toml file, or an imported image (default: shell).
    #[arg(value_name = "PROFILE", add = complete::profiles())]
    profile: Option<String>,
    /// chroot: the classic jail; namespace: full isolation (default: the profile's [run] mode).
    #[arg(long, value_enum)]
    mode: Option<ModeArg>,
    /// Enter the named instance (a student's own writable layer, kept between sessions).
    #[arg(long, add = complete::instances())]
    name: Option<String>,
    /// With --name: remove the instance when the command ends. Without a name nothing is kept anyway.
    #[arg(long, conflicts_with = "keep")]
    rm: bool,
    /// Keep what a one-off run wrote: the run becomes an instance with a new name (printed), for `diff`, `run --name` and `rm`.
    #[arg(long, conflicts_with = "name")]
    keep: bool,
    #[command(flatten)]
    overrides: Overrides,
    #[command(flatten)]
    terminal: TerminalFlags,
    #[command(flatten)]
    cgroup: CgroupArgs,
    /// The command to run instead of the profile's; everything after PROFILE is the command, as in `docker run`.
    #[arg(value_name = "CMD", allow_hyphen_values = true)]
    command: Vec<String>,
    /// The command, after `--` (`sandbox run -- ls` runs ls in the default profile).
    #[arg(last = true, value_name = "CMD", hide = true)]
    after_dashes: Vec<String>,
}

/// `-i` and `-t`, typed out of Docker habit: a terminal is given whenever one is there.
#[derive(clap::Args, Clone, Copy, Debug, Default)]
struct TerminalFlags {
    /// Accepted for Docker habits: stdin is always passed to the command.
    #[arg(short = 'i', long = "interactive")]
    interactive: bool,
    /// Accepted for Docker habits: the command gets a terminal whenever stdin is one.
    #[arg(short = 't', long = "tty")]
    tty: bool,
}

/// The command as typed, with or without `--`: `CMD...` and `-- CMD...`, or
/// both (`grep -- -x f`, where the `--` belongs to the command).
fn joined_command(command: Vec<String>, after_dashes: Vec<String>) -> Vec<String> {
    match (command.is_empty(), after_dashes.is_empty()) {
        (_, true) => command,
        (true, false) => after_dashes,
        (false, false) => command.into_iter().chain(["--".to_string()]).chain(after_dashes).collect(),
    }
}

#[derive(Subcommand)]
enum LabCommand {
    /// The labs, in order.
    List,
    /// A lab's goal, instructions and checks.
    Show {
        /// The lab (see `sandbox lab list`).
        #[arg(add = complete::labs())]
        lab: String,
    },
    /// Start the student's instance of a lab (and place its files).
    Start {
        /// The lab (see `sandbox lab list`).
        #[arg(add = complete::labs())]
        lab: String,
        /// The student (default: the user who ran sudo, or the user).
        #[arg(long, conflicts_with = "names_from")]
        name: Option<String>,
        /// A class: one student name a line.
        #[arg(long, value_name = "FILE")]
        names_from: Option<PathBuf>,
        #[command(flatten)]
        cgroup: CgroupArgs,
    },
    /// Run the lab's checks in the student's instance; exit 0 only when all pass.
    Check {
        /// The lab (see `sandbox lab list`).
        #[arg(add = complete::labs())]
        lab: String,
        /// The student (default: the user who ran sudo, or the user).
        #[arg(long, conflicts_with = "names_from")]
        name: Option<String>,
        /// A class: one student name a line (a table, or --json / --csv grades).
        #[arg(long, value_name = "FILE", value_hint = ValueHint::FilePath)]
        names_from: Option<PathBuf>,
        /// One JSON object per student, a line each: each check's id, result and what was seen.
        #[arg(long, conflicts_with = "csv")]
        json: bool,
        /// Grades as CSV: student, instance, passed, total, then 1/0 per check.
        #[arg(long)]
        csv: bool,
    },
}

/// Where the limits go, or that they do not (run, start, exec, lab start).
#[derive(clap::Args, Clone, Default)]
struct CgroupArgs {
    /// Run without the profile's [limits], on purpose (otherwise limits that cannot be applied stop the start).
    #[arg(long)]
    no_limits: bool,
    /// Create the sandbox's cgroups under this prepared cgroup (e.g. /sys/fs/cgroup/lab.slice).
    #[arg(long, value_name = "PATH")]
    cgroup_parent: Option<PathBuf>,
}

impl Command {
    /// The cgroup choices of the commands that take them.
    fn cgroup_args(&self) -> Option<&CgroupArgs> {
        match self {
            Command::Run(RunArgs { cgroup, .. }) | Command::Start { cgroup, .. } | Command::Exec { cgroup, .. } => Some(cgroup),
            Command::Lab { command: LabCommand::Start { cgroup, .. }, .. } => Some(cgroup),
            _ => None,
        }
    }
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum ModeArg {
    Chroot,
    Namespace,
}

impl From<ModeArg> for crate::profile::Mode {
    fn from(m: ModeArg) -> Self {
        match m {
            ModeArg::Chroot => crate::profile::Mode::Chroot,
            ModeArg::Namespace => crate::profile::Mode::Namespace,
        }
    }
}

/// Whether a command was asked for JSON: then a failure is a JSON object on stdout too.
fn wants_json(command: &Command) -> bool {
    match command {
        Command::Build { json, .. }
        | Command::Ps { json }
        | Command::Explain { json, .. }
        | Command::Check { json, .. }
        | Command::Why { json, .. }
        | Command::Doctor { json } => *json,
        Command::Lab { command: LabCommand::Check { json, .. }, .. } => *json,
        Command::Export(args) => args.json,
        Command::Import(args) => args.json,
        _ => false,
    }
}

pub fn main() -> ExitCode {
    // `COMPLETE=bash sandbox ...`: the shell asks for candidates (see `sandbox completions`).
    clap_complete::CompleteEnv::with_factory(Cli::command).complete();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => return usage_error(error),
    };
    output::set_color(cli.color);
    if let Some(args) = cli.command.cgroup_args() {
        crate::cgroup::options::choose(crate::cgroup::CgroupOptions { no_limits: args.no_limits, parent: args.cgroup_parent.clone() });
    }
    let json = wants_json(&cli.command);
    let result = dispatch(cli.command);
    result.unwrap_or_else(|failure| if json { failure.report_json() } else { failure.report() })
}

/// A usage error: clap's message (exit 2), and with --json also a JSON object on stdout.
fn usage_error(error: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    let json = std::env::args().skip(1).take_while(|a| a != "--").any(|a| a == "--json");
    let usage = !matches!(error.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion);
    if json && usage {
        let message = error.render().to_string();
        println!("{}", serde_json::json!({ "error": message.trim_start_matches("error: ").trim_end(), "status": 2 }));
    }
    let _ = error.print();
    ExitCode::from(if usage { 2 } else { 0 })
}

fn dispatch(command: Command) -> Result<ExitCode, Failure> {
    match command {
        Command::Build { profile, out, locked, json } => build::build(&profile, out.as_deref(), locked, json),
        Command::Run(args) => run_command(args),
        Command::Start { profile, names, names_from, .. } => instances::start(&profile, names, names_from.as_deref()),
        Command::Exec { name, command, after_dashes, .. } => instances::exec(&name, joined_command(command, after_dashes)),
        Command::Ps { json } => instances::ps(json),
        Command::Stop { names } => instances::stop(&names),
        Command::Reset { names } => instances::reset(&names),
        Command::Rm { names } => instances::rm(&names),
        Command::Diff { name, json } => instances::diff(&name, json),
        Command::Explain { profile, mode, step, dry_run, lang, json, build, command, after_dashes } => explain::explain(explain::Args {
            profile,
            mode: mode.map(Into::into),
            step,
            dry_run,
            lang,
            json,
            build,
            command: joined_command(command, after_dashes),
        }),
        Command::Check { profile, json } => build::check(&profile, json),
        Command::Why { path, profile, json } => why::why(&path, &profile, json),
        Command::Verify { profile, all } => verify::verify(profile.as_deref(), all),
        Command::Profiles => info::profiles(),
        Command::Gc => info::gc(),
        Command::Lab { labs, lang, command } => {
            let common = lab::Common { labs, lang };
            match command {
                LabCommand::List => lab::list(&common),
                LabCommand::Show { lab: wanted } => lab::show(&wanted, &common),
                LabCommand::Start { lab: wanted, name, names_from, .. } => {
                    lab::start(&wanted, name.as_deref(), names_from.as_deref(), &common)
                }
                LabCommand::Check { lab: wanted, name, names_from, json, csv } => {
                    let format = if json {
                        lab::Format::Json
                    } else if csv {
                        lab::Format::Csv
                    } else {
                        lab::Format::Text
                    };
                    lab::check(&wanted, name.as_deref(), names_from.as_deref(), format, &common)
                }
            }
        }
        Command::Doctor { json } => info::doctor(json),
        Command::Export(args) => export::export(args),
        Command::Import(args) => export::import(args),
        Command::Sbom(args) => sbom::sbom(args),
        Command::Serve(args) => serve::serve(args),
        Command::Login => serve::login(),
        Command::ServeWeb { config } => serve::web(&config),
        Command::Completions { shell } => complete::registration(&shell),
        Command::Man => {
            clap_mangen::Man::new(Cli::command()).render(&mut std::io::stdout())?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Set by `start` for the `run --name` it starts per instance: keep the
/// instance running without a command. An environment variable, not a flag,
/// so completion never offers it.
pub const BACKGROUND_ENV: &str = "SANDBOX_BACKGROUND";

fn run_command(args: RunArgs) -> Result<ExitCode, Failure> {
    let RunArgs { profile, mode, name, rm, keep, overrides, terminal: _, cgroup: _, command, after_dashes } = args;
    let profile = profile.unwrap_or_else(|| "shell".into());
    let command = joined_command(command, after_dashes);
    if !profile.contains('/') && !profile.ends_with(".toml") && crate::profile::ready().iter().all(|p| p.name != profile) {
        let name = profile.strip_prefix(crate::export::imported::PREFIX).unwrap_or(&profile);
        if crate::export::imported::ImageRecord::find(&crate::state::home(), name)?.is_none() {
            return Err(Failure {
                message: format!(
                    "no ready profile or imported image is named `{}`\n  fix: the profile comes first, as the image does in `docker run`: `sandbox run shell {}` runs it in the shell profile (ready profiles: {})",
                    profile.escape_debug(),
                    std::iter::once(profile.as_str())
                        .chain(command.iter().map(String::as_str))
                        .collect::<Vec<_>>()
                        .join(" ")
                        .escape_debug(),
                    crate::profile::ready().iter().map(|p| p.name).collect::<Vec<_>>().join(", ")
                ),
            });
        }
    }
    let background = std::env::var_os(BACKGROUND_ENV).is_some_and(|v| v == "1");
    // `--keep`: a one-off run's throwaway layer lives on a tmpfs that goes with
    // the sandbox, so what is to be kept is written into an instance instead.
    if keep {
        return instances::run_kept(&profile, command, background, &overrides);
    }
    match name {
        Some(name) => {
            let status = instances::run_named(&profile, &name, command, background, &overrides);
            if rm {
                // Docker's --rm: the container goes when its command ends, whatever the outcome.
                let removed = instances::rm(std::slice::from_ref(&name));
                let status = status?;
                removed?;
                return Ok(status);
            }
            status
        }
        None => run::run(&profile, mode.map(Into::into), command, &overrides),
    }
}
