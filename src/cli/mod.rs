//! The command line: clap definitions and dispatch. Each command lives in its
//! own module and returns an exit status or a `Failure` (one clear message,
//! exit status 125).

mod build;
mod explain;
mod export;
mod info;
mod instances;
mod lab;
mod output;
mod run;
mod why;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

pub use output::Failure;

/// Build identical lab environments and run students inside them.
#[derive(Parser)]
#[command(name = "sandbox", version, about, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Build the profile's rootfs (or reuse it from the store); print its digest and path.
    Build {
        /// A ready profile's name or a path to a .toml file.
        #[arg(default_value = "shell")]
        profile: String,
        /// Also write a plain copy of the rootfs to DIR (new or empty), for chroot, bwrap or tar.
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
        /// Fail, building nothing, when the result would differ from PROFILE.lock.
        #[arg(long)]
        locked: bool,
        /// Print one JSON object: {name, digest, path, entries, bytes, seconds, reused}.
        #[arg(long)]
        json: bool,
    },
    /// Enter the profile's environment and run its command (or CMD) there.
    Run {
        #[arg(default_value = "shell")]
        profile: String,
        /// chroot: the classic jail; namespace: full isolation (default: the profile's [run] mode).
        #[arg(long, value_enum)]
        mode: Option<ModeArg>,
        /// Enter the named instance (a student's own writable layer, kept between sessions).
        #[arg(long)]
        name: Option<String>,
        /// (used by `start`) keep the instance running without a command.
        #[arg(long, hide = true, requires = "name")]
        background: bool,
        #[command(flatten)]
        cgroup: CgroupArgs,
        /// The command to run instead of the profile's, after `--`.
        #[arg(last = true)]
        command: Vec<String>,
    },
    /// Start instances in the background, one per name, in parallel.
    Start {
        profile: String,
        #[arg(long = "name")]
        names: Vec<String>,
        /// A file with one instance name a line.
        #[arg(long)]
        names_from: Option<PathBuf>,
        #[command(flatten)]
        cgroup: CgroupArgs,
    },
    /// Run a command in a running instance (the same namespaces, root, user and limits).
    Exec {
        name: String,
        #[command(flatten)]
        cgroup: CgroupArgs,
        #[arg(last = true)]
        command: Vec<String>,
    },
    /// List the instances: state, PID, uptime, memory and pids from their cgroup.
    Ps {
        #[arg(long)]
        json: bool,
    },
    /// Stop instances (SIGTERM to PID 1, SIGKILL after 5 seconds).
    Stop { names: Vec<String> },
    /// Drop instances' writable layers: back to the pristine environment.
    Reset { names: Vec<String> },
    /// Remove instances and their layers.
    Rm { names: Vec<String> },
    /// What the student changed: A added, C changed, D deleted.
    Diff { name: String },
    /// Run the same steps as `run`, one at a time, showing what each changed.
    Explain {
        #[arg(default_value = "shell")]
        profile: String,
        #[arg(long, value_enum)]
        mode: Option<ModeArg>,
        /// Wait for Enter before each step (a class at the teacher's pace).
        #[arg(long)]
        step: bool,
        /// Show the plan with its texts and shell equivalents; run nothing.
        #[arg(long)]
        dry_run: bool,
        /// en or ko (default: from LANG).
        #[arg(long)]
        lang: Option<String>,
        /// One JSON object a line: each step's id, command, system call, result and observations.
        #[arg(long)]
        json: bool,
        /// Tell how the rootfs was assembled instead.
        #[arg(long)]
        build: bool,
        #[arg(last = true)]
        command: Vec<String>,
    },
    /// Validate a profile (syntax, values, programs, locales, zones) without building.
    Check {
        #[arg(default_value = "shell")]
        profile: String,
    },
    /// Explain why a file is in the rootfs: the chain of reasons that put it there.
    Why {
        /// A path inside the rootfs, e.g. /usr/lib/x86_64-linux-gnu/libpcre2-8.so.0.
        path: String,
        #[arg(default_value = "shell")]
        profile: String,
    },
    /// Labs: exercises with automatic checks.
    Lab {
        #[command(subcommand)]
        command: LabCommand,
    },
    /// Remove what crashed runs left behind (cgroups, abandoned builds).
    Gc,
    /// List the ready profiles built into this binary.
    Profiles,
    /// Check what this machine supports (namespaces, cgroups, overlayfs) and what is missing.
    Doctor {
        #[arg(long)]
        json: bool,
    },
    /// Print a shell completion script.
    Completions { shell: clap_complete::Shell },
    /// Write the environment as an OCI image, a `docker load` archive, a runtime bundle or a Kubernetes manifest.
    Export(export::ExportArgs),
    /// Import an OCI image (layout or archive) into the store as a rootfs.
    Import(export::ImportArgs),
}

#[derive(Subcommand)]
enum LabCommand {
    /// The labs, in order.
    List {
        #[arg(long)]
        lang: Option<String>,
    },
    /// A lab's goal, instructions and checks.
    Show {
        lab: String,
        #[arg(long)]
        lang: Option<String>,
    },
    /// Start the student's instance of a lab (and place its files).
    Start {
        lab: String,
        /// The student (default: the user who ran sudo, or the user).
        #[arg(long)]
        name: Option<String>,
        #[command(flatten)]
        cgroup: CgroupArgs,
    },
    /// Run the lab's checks in the student's instance; exit 0 only when all pass.
    Check {
        lab: String,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        json: bool,
        #[arg(long)]
        lang: Option<String>,
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
            Command::Run { cgroup, .. } | Command::Start { cgroup, .. } | Command::Exec { cgroup, .. } => Some(cgroup),
            Command::Lab { command: LabCommand::Start { cgroup, .. } } => Some(cgroup),
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

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(args) = cli.command.cgroup_args() {
        crate::cgroup::options::choose(crate::cgroup::CgroupOptions { no_limits: args.no_limits, parent: args.cgroup_parent.clone() });
    }
    let result = match cli.command {
        Command::Build { profile, out, locked, json } => build::build(&profile, out.as_deref(), locked, json),
        Command::Run { profile, mode: _, name: Some(name), background, command, .. } => {
            instances::run_named(&profile, &name, command, background)
        }
        Command::Run { profile, mode, name: None, command, .. } => run::run(&profile, mode.map(Into::into), command),
        Command::Start { profile, names, names_from, .. } => instances::start(&profile, names, names_from.as_deref()),
        Command::Exec { name, command, .. } => instances::exec(&name, command),
        Command::Ps { json } => instances::ps(json),
        Command::Stop { names } => instances::stop(&names),
        Command::Reset { names } => instances::reset(&names),
        Command::Rm { names } => instances::rm(&names),
        Command::Diff { name } => instances::diff(&name),
        Command::Explain { profile, mode, step, dry_run, lang, json, build, command } => {
            explain::explain(explain::Args { profile, mode: mode.map(Into::into), step, dry_run, lang, json, build, command })
        }
        Command::Check { profile } => build::check(&profile),
        Command::Why { path, profile } => why::why(&path, &profile),
        Command::Profiles => info::profiles(),
        Command::Gc => info::gc(),
        Command::Lab { command } => match command {
            LabCommand::List { lang } => lab::list(lang.as_deref()),
            LabCommand::Show { lab: wanted, lang } => lab::show(&wanted, lang.as_deref()),
            LabCommand::Start { lab: wanted, name, .. } => lab::start(&wanted, name.as_deref()),
            LabCommand::Check { lab: wanted, name, json, lang } => lab::check(&wanted, name.as_deref(), json, lang.as_deref()),
        },
        Command::Doctor { json } => info::doctor(json),
        Command::Export(args) => export::export(args),
        Command::Import(args) => export::import(args),
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "sandbox", &mut std::io::stdout());
            Ok(ExitCode::SUCCESS)
        }
    };
    result.unwrap_or_else(|failure| failure.report())
}
