//! The texts of `explain`, one catalog file per language, keyed by step id.

use std::collections::BTreeMap;

use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepText {
    pub title: String,
    pub concept: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Catalog {
    pub steps: BTreeMap<String, StepText>,
    pub labels: BTreeMap<String, String>,
    pub text: BTreeMap<String, String>,
    /// The words of `sandbox lab` (list, show, start, check).
    pub lab: BTreeMap<String, String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lang {
    En,
    Ko,
}

impl Lang {
    pub const ALL: [Lang; 2] = [Lang::En, Lang::Ko];

    /// From `--lang`, else from LANG / LC_ALL / LC_MESSAGES (`ko_KR.UTF-8` -> Korean).
    pub fn choose(flag: Option<&str>) -> Lang {
        let from_env = || ["LC_ALL", "LC_MESSAGES", "LANG"].iter().find_map(|v| std::env::var(v).ok().filter(|s| !s.is_empty()));
        match flag.map(str::to_string).or_else(from_env) {
            Some(l) if l.starts_with("ko") => Lang::Ko,
            _ => Lang::En,
        }
    }

    fn source(self) -> &'static str {
        match self {
            Lang::En => include_str!("catalog/en.toml"),
            Lang::Ko => include_str!("catalog/ko.toml"),
        }
    }
}

impl Catalog {
    pub fn load(lang: Lang) -> Catalog {
        // Embedded and tested: a broken catalog is a bug of the build, not of input.
        toml::from_str(lang.source()).expect("the embedded explain catalogs are valid (tested)")
    }

    pub fn title<'a>(&'a self, id: &'a str) -> &'a str {
        self.steps.get(id).map(|s| s.title.as_str()).unwrap_or(id)
    }

    pub fn concept(&self, id: &str) -> &str {
        self.steps.get(id).map(|s| s.concept.as_str()).unwrap_or("")
    }

    pub fn label<'a>(&'a self, key: &'a str) -> &'a str {
        self.labels.get(key).map(String::as_str).unwrap_or(key)
    }

    pub fn text<'a>(&'a self, key: &'a str) -> &'a str {
        self.text.get(key).map(String::as_str).unwrap_or(key)
    }

    /// A `[lab]` text with its `{placeholders}` filled.
    pub fn lab(&self, key: &str, values: &[(&str, &str)]) -> String {
        let mut text = self.lab.get(key).cloned().unwrap_or_else(|| key.to_string());
        for (name, value) in values {
            text = text.replace(&format!("{{{name}}}"), value);
        }
        text
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::plan::{self, IdMapping, Input};
    use crate::profile::{self, Mode, NetworkMode};
    use std::path::{Path, PathBuf};

    /// Every step id any plan can contain, from plans built for every shape.
    fn all_step_ids() -> Vec<&'static str> {
        let mut ids: Vec<&'static str> = all_plans().iter().flat_map(|p| p.ids()).collect();
        ids.sort();
        ids.dedup();
        ids
    }

    /// Plans of every shape: both modes, both network kinds, with limits, a
    /// mount, a student's instance, and `exec` into one.
    pub(crate) fn all_plans() -> Vec<plan::Plan> {
        let mut plans = Vec::new();
        let mut profile = profile::load("shell", Path::new("/")).unwrap();
        profile.mounts.push(crate::profile::MountSpec {
            source: "/tmp".into(),
            target: "/shared".into(),
            readonly: true,
            origin: crate::profile::Origin { file: "t".into(), line: 1, column: 1 },
        });
        for mode in [Mode::Namespace, Mode::Chroot] {
            for network in [NetworkMode::Loopback, NetworkMode::Host] {
                profile.network = network;
                let input = Input {
                    profile: &profile,
                    mode,
                    rootfs: PathBuf::from("/r"),
                    command: vec!["/bin/true".into()],
                    term: None,
                    ids: IdMapping::Range { host_base: 1 },
                    idmapped: true,
                    cgroup: plan::CgroupPlan {
                        dirs: vec!["/c".into()],
                        writes: ["memory.max", "memory.memsw.limit_in_bytes", "pids.max", "cpu.max"]
                            .iter()
                            .map(|f| plan::CgroupWrite { file: PathBuf::from("/c").join(f), value: "1".into() })
                            .collect(),
                        procs: vec!["/c/cgroup.procs".into()],
                        supervisor_leaf: Some("/p/supervisor".into()),
                        ..Default::default()
                    },
                    layer: None,
                    throwaway: true,
                };
                plans.push(plan::build(&input));
                // A student's instance, and `exec` into one.
                let layer = plan::Layer { upper: "/u".into(), work: "/w".into(), merged: "/m".into(), disk: None };
                let disk = plan::Layer {
                    upper: "/i/layer/upper".into(),
                    work: "/i/layer/work".into(),
                    disk: Some("/i/disk.img".into()),
                    ..layer.clone()
                };
                plans.push(plan::build(&Input { layer: Some(disk), ..input.clone() }));
                plans.push(plan::build(&Input { layer: Some(layer), ..input.clone() }));
                plans.push(plan::join(&input, 42));
            }
        }
        plans
    }

    #[test]
    fn every_step_has_a_text_in_every_language() {
        let ids = all_step_ids();
        assert!(ids.len() >= 30, "{ids:?}");
        let english = Catalog::load(Lang::En);
        for lang in Lang::ALL {
            let catalog = Catalog::load(lang);
            for id in &ids {
                let text = catalog.steps.get(*id).unwrap_or_else(|| panic!("{lang:?} has no text for step `{id}`"));
                assert!(!text.title.trim().is_empty() && text.concept.trim().len() > 40, "{lang:?} {id}");
            }
            let keys = |m: &BTreeMap<String, String>| m.keys().cloned().collect::<Vec<_>>();
            assert_eq!(keys(&catalog.labels), keys(&english.labels), "{lang:?} labels");
            assert_eq!(keys(&catalog.text), keys(&english.text), "{lang:?} texts");
            assert_eq!(keys(&catalog.lab), keys(&english.lab), "{lang:?} lab texts");
        }
    }

    #[test]
    fn korean_catalog_is_korean() {
        let ko = Catalog::load(Lang::Ko);
        let hangul = |s: &str| s.chars().any(|c| ('\u{AC00}'..='\u{D7A3}').contains(&c));
        for (id, text) in &ko.steps {
            assert!(hangul(&text.concept), "step {id} is not in Korean");
        }
        // Every word `lab list/show/check --lang ko` prints, but the commands.
        for (key, text) in &ko.lab {
            assert!(hangul(text) || text.starts_with("sandbox "), "lab text {key} is not in Korean: {text}");
        }
    }

    #[test]
    fn language_comes_from_the_flag_then_the_environment() {
        assert_eq!(Lang::choose(Some("ko")), Lang::Ko);
        assert_eq!(Lang::choose(Some("en")), Lang::En);
    }
}
