//! `sandbox sbom [PROFILE]`: the SPDX 2.3 document of the profile's rootfs
//! (what `export --oci` carries beside the image).

use std::io::Write;
use std::process::ExitCode;

use clap::ValueHint;

use super::output::Failure;
use crate::export::{self, chain};
use crate::rootfs::Store;

#[derive(clap::Args)]
pub struct SbomArgs {
    /// A ready profile's name, a path to a .toml file, or an imported image.
    #[arg(default_value = "shell", add = super::complete::profiles())]
    pub profile: String,
    /// Write the document to FILE instead of stdout.
    #[arg(long, short = 'o', value_name = "FILE", value_hint = ValueHint::FilePath)]
    pub output: Option<std::path::PathBuf>,
}

pub fn sbom(args: SbomArgs) -> Result<ExitCode, Failure> {
    let cwd = std::env::current_dir()?;
    let epoch = export::source_date_epoch()?;
    let store = Store::open(&crate::state::home())?;
    let hidden = indicatif::ProgressBar::hidden();
    // Only the profile itself: its lock covers every level of `extends`.
    let profile = crate::profile::load(&args.profile, &cwd)?;
    let level = chain::build_levels(vec![profile], &store, &hidden)?.pop().ok_or_else(|| Failure { message: "no level".into() })?;
    let document = export::sbom::spdx(&level.sbom_input(epoch))?;
    match &args.output {
        Some(file) => std::fs::write(file, &document).map_err(|e| Failure { message: format!("{}: {e}", file.display()) })?,
        None => std::io::stdout().write_all(&document)?,
    }
    Ok(ExitCode::SUCCESS)
}
