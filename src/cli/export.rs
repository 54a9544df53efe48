//! `sandbox export` and `sandbox import`: the environment as an OCI image,
//! a `docker load` archive, a runtime bundle or a Kubernetes manifest, and an
//! OCI image back into the store.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::ValueHint;
use serde_json::json;
use termcolor::{Color, StandardStream};

use super::output::{Failure, Stream, paint, stream};
use crate::export::{self, bundle::Runner, chain, image, k8s};
use crate::rootfs::{Store, digest::short};

/// `sandbox export [PROFILE] --oci DIR | --tar FILE|- | --bundle DIR | --k8s`.
#[derive(clap::Args)]
#[command(group(clap::ArgGroup::new("output").required(true).multiple(true).args(["oci", "tar", "bundle", "k8s"])))]
pub struct ExportArgs {
    /// A ready profile's name, a path to a .toml file, or an imported image.
    #[arg(default_value = "shell", add = super::complete::profiles())]
    pub profile: String,
    /// Write an OCI image layout to DIR (new or empty): one layer per level of `extends`, and the SBOM.
    #[arg(long, value_name = "DIR", value_hint = ValueHint::DirPath)]
    pub oci: Option<PathBuf>,
    /// Write one archive for `docker load` and `podman load` (tagged NAME:DIGEST and NAME:latest); `-` writes it to stdout.
    #[arg(long, value_name = "FILE", value_hint = ValueHint::FilePath)]
    pub tar: Option<PathBuf>,
    /// Write an OCI runtime bundle to DIR (new or empty): rootfs/ and config.json, for runc and crun.
    #[arg(long, value_name = "DIR", value_hint = ValueHint::DirPath)]
    pub bundle: Option<PathBuf>,
    /// Print a Kubernetes manifest (YAML): a Pod with its home claim, or with --students a class.
    #[arg(long)]
    pub k8s: bool,
    /// With --k8s: one student name a line; a Namespace with a quota and one StatefulSet and home per student.
    #[arg(long, value_name = "FILE", requires = "k8s", value_hint = ValueHint::FilePath)]
    pub students: Option<PathBuf>,
    /// With --k8s: the image the cluster pulls, REGISTRY/NAME[:TAG] (default: sandbox/NAME:DIGEST, as --tar loads).
    #[arg(long, value_name = "REF", requires = "k8s")]
    pub image: Option<String>,
    /// With --k8s: the size of each home claim (default: the profile's [limits] disk, else 1Gi).
    #[arg(long, value_name = "SIZE", requires = "k8s")]
    pub home_size: Option<String>,
    /// Print one JSON object: {name, digest, layers, oci, tar, bundle, notes} (not with --k8s or --tar -).
    #[arg(long, conflicts_with = "k8s")]
    pub json: bool,
}

/// `sandbox import OCI_DIR_OR_ARCHIVE [--name NAME]`.
#[derive(clap::Args)]
pub struct ImportArgs {
    /// An OCI image layout directory, or a tar of one (oci-archive, `docker save`, `sandbox export --tar`).
    #[arg(value_hint = ValueHint::AnyPath)]
    pub source: PathBuf,
    /// The image's name, for `sandbox run NAME` (default: from the image's title label, else `imported`).
    #[arg(long)]
    pub name: Option<String>,
    /// Keep the file capabilities of the image's files (dropped by default, and noted either way).
    #[arg(long)]
    pub keep_caps: bool,
    /// Print one JSON object: {name, digest, path, entries, reused, notes}.
    #[arg(long)]
    pub json: bool,
}

pub fn export(args: ExportArgs) -> Result<ExitCode, Failure> {
    let cwd = std::env::current_dir()?;
    let to_stdout = args.tar.as_deref() == Some(Path::new("-"));
    if to_stdout && (args.k8s || args.json) {
        return Err(Failure { message: "--tar - and --k8s/--json would both write to stdout\n  fix: give --tar a file name".into() });
    }
    if to_stdout && std::io::stdout().is_terminal() {
        return Err(Failure {
            message: "--tar - would write an archive to the terminal\n  fix: pipe it, e.g. `| podman load`, or give a file name".into(),
        });
    }
    // What can be checked without building is checked first: a typo should not cost a build.
    let students = args.students.as_deref().map(read_students).transpose()?;
    if let Some(reference) = &args.image {
        k8s::check_image_reference(reference)?;
    }
    let home_size = args.home_size.as_deref().map(k8s::parse_size).transpose()?;
    for dir in [&args.oci, &args.bundle].into_iter().flatten() {
        check_new_or_empty(dir)?;
    }
    let epoch = export::source_date_epoch()?;
    let state = crate::state::home();
    let store = Store::open(&state)?;
    let progress = progress_bar(args.json);
    let levels = chain::build_levels(chain::load_chain(&args.profile, &cwd)?, &store, &progress)?;
    let top = levels.last().ok_or_else(|| Failure { message: "the profile has no level".into() })?;
    let mut lines = Vec::new();
    let mut notes = Vec::new();
    let mut report = json!({ "name": top.profile.name, "digest": top.digest, "layers": top.profile.layers });
    if let Some(dir) = &args.oci {
        let annotations = [(image::REF_NAME.to_string(), "latest".to_string())].into();
        let staging = export::staging_beside(dir)?;
        let written = image::write_layout(staging.path(), &levels, epoch, &[annotations], &progress)?;
        export::publish_dir(staging.path(), dir)?;
        lines.push(format!(
            "oci:    {}  (manifest {}, {} layers, SBOM {})",
            dir.display(),
            written.manifest.digest,
            written.layers.len(),
            written.sbom.digest
        ));
        lines.push(format!("        skopeo inspect oci:{}:latest", dir.display()));
        report["oci"] =
            json!({ "dir": dir, "manifest": written.manifest.digest, "layers": written.layers.len(), "sbom": written.sbom.digest });
    }
    if let Some(file) = &args.tar {
        if to_stdout {
            let (_, references) =
                export::archive::write_archive_to(&mut std::io::stdout().lock(), &state.join("store/tmp"), &levels, epoch, &progress)?;
            lines.push(format!("tar:    stdout  (loads as {})", references.join(" and ")));
        } else {
            let (_, references) = export::archive::write_archive(file, &levels, epoch, &progress)?;
            lines.push(format!("tar:    {}  (loads as {})", file.display(), references.join(" and ")));
            lines.push(format!("        docker load -i {0}   or   podman load -i {0}", file.display()));
            report["tar"] = json!({ "file": file, "references": references });
        }
    }
    if let Some(dir) = &args.bundle {
        progress.set_message("bundle");
        notes.extend(export::bundle::write_bundle(dir, &store, top, Runner::current())?);
        lines.push(format!("bundle: {}", dir.display()));
        lines.push(format!("        runc run --bundle {} {}", dir.display(), top.profile.name));
        report["bundle"] = json!({ "dir": dir });
    }
    progress.finish_and_clear();
    if args.k8s {
        let class = k8s::Class {
            profile: &top.profile,
            digest: &top.digest,
            manifest: &top.manifest,
            image: args.image.as_deref(),
            students: students.as_deref(),
            // The student's writable place on a cluster is the home claim: it
            // takes the cap `[limits] disk` puts on an instance's layer.
            home_size: home_size.or(top.profile.limits.disk).unwrap_or(k8s::DEFAULT_HOME_SIZE),
        };
        std::io::stdout().write_all(k8s::manifest(&class)?.as_bytes())?;
    }
    if args.json {
        report["notes"] = json!(notes);
        println!("{report}");
        return Ok(ExitCode::SUCCESS);
    }
    // With --k8s or --tar - the output owns stdout, so it can be piped to kubectl or podman.
    let mut out = stream(if args.k8s || to_stdout { Stream::Stderr } else { Stream::Stdout });
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
    let options = export::import::Options { keep_caps: args.keep_caps };
    let imported = export::import::import(&args.source, args.name.as_deref(), options, &store, &state)?;
    let built = &imported.built;
    if args.json {
        let report = json!({
            "name": imported.image.name,
            "digest": built.digest,
            "path": built.path,
            "entries": built.entries,
            "reused": built.reused,
            "command": imported.image.command(),
            "user": imported.image.user,
            "notes": imported.notes,
        });
        println!("{report}");
        return Ok(ExitCode::SUCCESS);
    }
    let mut out = stream(Stream::Stdout);
    paint(&mut out, Color::Green, true, if built.reused { "reused" } else { "imported" })?;
    writeln!(out, " {} {}  ({} entries)", imported.image.name, short(&built.digest), built.entries)?;
    writeln!(out, "  digest: {}", built.digest)?;
    writeln!(out, "  path:   {}", built.path.display())?;
    writeln!(out, "  run:    sandbox run {0}   or   sandbox start {0} --name NAME", imported.image.name)?;
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

/// Every step that takes a while (hashing, copying, each layer, the archive) moves the bar.
fn progress_bar(quiet: bool) -> indicatif::ProgressBar {
    if quiet || !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(0);
    if let Ok(style) = indicatif::ProgressStyle::with_template("{msg:>10} [{bar:30}] {pos}/{len} {elapsed}") {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}
