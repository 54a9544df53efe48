//! `sandbox export` and `sandbox import`: the environment as an OCI image,
//! a `docker load` archive, a runtime bundle or a Kubernetes manifest, and an
//! OCI image back into the store.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use termcolor::{Color, StandardStream};

use super::output::{Failure, Stream, paint, stream};
use crate::export::{self, bundle::Runner, chain, image, k8s};
use crate::rootfs::{Store, digest::short};

/// `sandbox export [PROFILE] --oci DIR | --tar FILE | --bundle DIR | --k8s`.
#[derive(clap::Args)]
#[command(group(clap::ArgGroup::new("output").required(true).multiple(true).args(["oci", "tar", "bundle", "k8s"])))]
pub struct ExportArgs {
    /// A ready profile's name or a path to a .toml file.
    #[arg(default_value = "shell")]
    pub profile: String,
    /// Write an OCI image layout to DIR (new or empty): one layer per level of `extends`.
    #[arg(long, value_name = "DIR")]
    pub oci: Option<PathBuf>,
    /// Write one archive for `docker load` and `podman load` (a docker-archive that is also an oci-archive).
    #[arg(long, value_name = "FILE")]
    pub tar: Option<PathBuf>,
    /// Write an OCI runtime bundle to DIR (new or empty): rootfs/ and config.json, for runc and crun.
    #[arg(long, value_name = "DIR")]
    pub bundle: Option<PathBuf>,
    /// Print a Kubernetes manifest (YAML): a Pod, or with --students a StatefulSet for the class.
    #[arg(long)]
    pub k8s: bool,
    /// One student name a line: a StatefulSet with one pod per student and a ConfigMap of the names.
    #[arg(long, value_name = "FILE", requires = "k8s")]
    pub students: Option<PathBuf>,
}

/// `sandbox import OCI_DIR_OR_ARCHIVE [--name NAME]`.
#[derive(clap::Args)]
pub struct ImportArgs {
    /// An OCI image layout directory, or a tar of one (oci-archive, `docker save`, `sandbox export --tar`).
    pub source: PathBuf,
    /// The name recorded for the rootfs (default: the image's title label, else `imported`).
    #[arg(long)]
    pub name: Option<String>,
}

pub fn export(args: ExportArgs) -> Result<ExitCode, Failure> {
    let cwd = std::env::current_dir()?;
    // What can be checked without building is checked first: a typo should not cost a build.
    let students = args.students.as_deref().map(read_students).transpose()?;
    for dir in [&args.oci, &args.bundle].into_iter().flatten() {
        check_new_or_empty(dir)?;
    }
    let epoch = export::source_date_epoch()?;
    let store = Store::open(&crate::state::home())?;
    let progress = progress_bar();
    let levels = chain::build_levels(chain::load_chain(&args.profile, &cwd)?, &store, &progress)?;
    progress.finish_and_clear();
    let top = levels.last().ok_or_else(|| Failure { message: "the profile has no level".into() })?;
    let mut lines = Vec::new();
    let mut notes = Vec::new();
    if let Some(dir) = &args.oci {
        let annotations = [(image::REF_NAME.to_string(), "latest".to_string())].into();
        let staging = export::staging_beside(dir)?;
        let written = image::write_layout(staging.path(), &levels, epoch, annotations)?;
        export::publish_dir(staging.path(), dir)?;
        lines.push(format!("oci:    {}  (manifest {}, {} layers)", dir.display(), written.manifest.digest, written.layers.len()));
        lines.push(format!("        skopeo inspect oci:{}:latest", dir.display()));
    }
    if let Some(file) = &args.tar {
        let (_, reference) = export::archive::write_archive(file, &levels, epoch)?;
        lines.push(format!("tar:    {}  (loads as {reference})", file.display()));
        lines.push(format!("        docker load -i {0}   or   podman load -i {0}", file.display()));
    }
    if let Some(dir) = &args.bundle {
        notes.extend(export::bundle::write_bundle(dir, &store, top, Runner::current())?);
        lines.push(format!("bundle: {}", dir.display()));
        lines.push(format!("        runc run --bundle {} {}", dir.display(), top.profile.name));
    }
    if args.k8s {
        let yaml = k8s::manifest(&top.profile, &top.digest, students.as_deref())?;
        std::io::stdout().write_all(yaml.as_bytes())?;
    }
    // With --k8s the manifest owns stdout, so it can be piped to kubectl.
    let mut out = stream(if args.k8s { Stream::Stderr } else { Stream::Stdout });
    paint(&mut out, Color::Green, true, "exported")?;
    writeln!(out, " {} {}  ({})", top.profile.name, short(&top.digest), top.profile.layers.join(" > "))?;
    for line in lines {
        writeln!(out, "  {line}")?;
    }
    print_notes(&mut out, &notes)?;
    Ok(ExitCode::SUCCESS)
}

pub fn import(args: ImportArgs) -> Result<ExitCode, Failure> {
    let state = crate::state::home();
    let store = Store::open(&state)?;
    let imported = export::import::import(&args.source, args.name.as_deref(), &store, &state)?;
    let built = &imported.built;
    let mut out = stream(Stream::Stdout);
    paint(&mut out, Color::Green, true, if built.reused { "reused" } else { "imported" })?;
    writeln!(out, " {} {}  ({} entries)", built.name, short(&built.digest), built.entries)?;
    writeln!(out, "  digest: {}", built.digest)?;
    writeln!(out, "  path:   {}", built.path.display())?;
    print_notes(&mut stream(Stream::Stderr), &imported.notes)?;
    Ok(ExitCode::SUCCESS)
}

/// The directories written are published by a rename, which needs them new or empty.
fn check_new_or_empty(dir: &Path) -> Result<(), Failure> {
    match std::fs::read_dir(dir).map(|mut entries| entries.next().is_none()) {
        Ok(false) => Err(Failure { message: format!("{} is not empty; give a new or empty directory", dir.display()) }),
        Ok(true) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Failure { message: format!("{}: {e}", dir.display()) }),
    }
}

fn read_students(path: &Path) -> Result<Vec<String>, Failure> {
    // The shared names reader: passwd lines are refused, lines told by number only.
    Ok(crate::names::read_file(path).map_err(|e| Failure { message: format!("--students {e}") })?.into_iter().map(|l| l.name).collect())
}

fn print_notes(out: &mut StandardStream, notes: &[String]) -> std::io::Result<()> {
    for note in notes {
        paint(out, Color::Yellow, true, "note")?;
        writeln!(out, ": {note}")?;
    }
    Ok(())
}

fn progress_bar() -> indicatif::ProgressBar {
    if !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(0);
    if let Ok(style) = indicatif::ProgressStyle::with_template("{msg:>8} [{bar:30}] {pos}/{len} files") {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}
