//! The course's labs, built into the binary like the ready profiles: `lab list`
//! works from any directory and after the source tree is gone, and no file a
//! student can write is ever taken for a lab. A test keeps this table equal to
//! the `labs/` folder.

/// One lab folder: its name and its files (path relative to the folder, bytes).
pub type EmbeddedLab = (&'static str, &'static [(&'static str, &'static [u8])]);

macro_rules! lab {
    ($id:literal: $($file:literal),* $(,)?) => {
        ($id, &[$(($file, include_bytes!(concat!("../../labs/", $id, "/", $file)) as &[u8])),*])
    };
}

pub static LABS: &[EmbeddedLab] = &[
    lab!("01-chroot-by-hand": "lab.toml", "README.en.md", "README.ko.md", "cheat/answers.sh", "cheat/fake-elf.sh", "cheat/neighbour.sh", "solution/solve.sh"),
    lab!("02-chroot-escape": "lab.toml", "profile.toml", "teacher.toml", "README.en.md", "README.ko.md", "cheat/answers.sh", "cheat/neighbour.sh", "solution/solve.sh"),
    lab!("03-pid-namespace": "lab.toml", "profile.toml", "README.en.md", "README.ko.md", "cheat/answers.sh", "cheat/neighbour.sh", "cheat/wrong-parent.sh", "solution/solve.sh"),
    lab!("04-mount-namespace": "lab.toml", "profile.toml", "README.en.md", "README.ko.md", "cheat/answers.sh", "cheat/neighbour.sh", "solution/solve.sh"),
    lab!("05-uts-ipc": "lab.toml", "profile.toml", "README.en.md", "README.ko.md", "cheat/answers.sh", "cheat/neighbour.sh", "solution/solve.sh"),
    lab!("06-network-namespace": "lab.toml", "profile.toml", "README.en.md", "README.ko.md", "cheat/answers.sh", "cheat/neighbour.sh", "solution/solve.sh"),
    lab!("07-user-namespace": "lab.toml", "profile.toml", "README.en.md", "README.ko.md", "cheat/answers.sh", "cheat/neighbour.sh", "solution/solve.sh"),
    lab!("08-cgroups": "lab.toml", "profile.toml", "README.en.md", "README.ko.md", "cheat/answers.sh", "cheat/impossible-ratio.sh", "cheat/neighbour.sh", "solution/solve.sh"),
    lab!("09-layers": "lab.toml", "profile.toml", "README.en.md", "README.ko.md", "cheat/answers.sh", "cheat/neighbour.sh", "solution/solve.sh"),
    lab!("10-container-vs-vm": "lab.toml", "profile.toml", "README.en.md", "README.ko.md", "cheat/answers.sh", "cheat/neighbour.sh", "solution/solve.sh"),
];

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::path::Path;

    fn walk(dir: &Path, prefix: &str, out: &mut BTreeSet<String>) {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let name = format!("{prefix}{}", entry.file_name().to_string_lossy());
            if entry.file_type().unwrap().is_dir() {
                walk(&entry.path(), &format!("{name}/"), out);
            } else {
                out.insert(name);
            }
        }
    }

    #[test]
    fn the_table_holds_every_file_of_every_lab_folder() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("labs");
        let mut on_disk = BTreeSet::new();
        for entry in std::fs::read_dir(&root).unwrap().flatten() {
            if entry.path().join("lab.toml").is_file() {
                walk(&entry.path(), &format!("{}/", entry.file_name().to_string_lossy()), &mut on_disk);
            }
        }
        let embedded: BTreeSet<String> =
            super::LABS.iter().flat_map(|(id, files)| files.iter().map(move |(f, _)| format!("{id}/{f}"))).collect();
        assert_eq!(embedded, on_disk, "src/lab/embedded.rs must list exactly the files under labs/");
    }
}
