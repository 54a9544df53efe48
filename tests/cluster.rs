//! `sandbox export --k8s` for a class: the manifests validated offline
//! against Kubernetes' own schemas (kubernetes-validate, strict, the three
//! newest versions it ships), read back as Kubernetes' types, and the Pod
//! run by `podman kube play`.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

const PROFILE: &str = r#"name = "k8s-lab"
description = "a lab for the cluster tests"
[rootfs]
binaries = ["sh", "cat", "ls", "id", "echo", "cp", "ping", "sleep"]
[[rootfs.write]]
path = "/home/student/README"
content = "Welcome to the lab\n"
[user]
name = "student"
uid = 1000
gid = 1000
home = "/home/student"
shell = "/bin/sh"
[run]
command = ["/bin/sh", "-c", "id -un; cat README; echo work > saved; cat saved; ping -c 1 -W 5 127.0.0.1 >/dev/null && echo ping-ok"]
[limits]
memory = "64M"
pids = 32
cpu = 0.5
tmp = "16M"
disk = "2G"
[network]
mode = "loopback"
"#;

fn lab() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    fs::write(dir.path().join("lab.toml"), PROFILE).unwrap();
    let lab = dir.path().join("lab.toml");
    (dir, lab)
}

fn documents(yaml: &str) -> Vec<serde_json::Value> {
    use serde::Deserialize;
    serde_norway::Deserializer::from_str(yaml).map(|d| serde_json::Value::deserialize(d).unwrap()).collect()
}

fn kinds(documents: &[serde_json::Value]) -> Vec<String> {
    documents.iter().map(|d| d["kind"].as_str().unwrap().to_string()).collect()
}

fn students_file(dir: &Path) -> PathBuf {
    let students = dir.join("students.txt");
    fs::write(&students, "# class A\nalice\nbob\n\ncarol # late\n").unwrap();
    students
}

#[test]
fn the_class_is_a_namespace_with_a_quota_a_policy_and_a_statefulset_and_home_per_student() {
    use k8s_openapi::api::apps::v1::StatefulSet;
    use k8s_openapi::api::core::v1::{Namespace, ResourceQuota};
    use k8s_openapi::api::networking::v1::NetworkPolicy;

    let (dir, lab) = lab();
    let image = "registry.example.com:5000/class/k8s-lab:2026";
    let yaml = ok(sandbox().arg("export").arg(&lab).arg("--k8s").arg("--students").arg(students_file(dir.path())).args(["--image", image]));
    let docs = documents(&yaml);
    // An order `kubectl apply -f` takes in one go: the Namespace before what lives in it.
    assert_eq!(kinds(&docs), ["Namespace", "ResourceQuota", "NetworkPolicy", "Service", "StatefulSet", "StatefulSet", "StatefulSet"]);
    let namespace: Namespace = serde_json::from_value(docs[0].clone()).unwrap();
    let ns = namespace.metadata.name.unwrap();
    for doc in &docs[1..] {
        assert_eq!(doc["metadata"]["namespace"], ns.as_str(), "every object in the class namespace");
    }
    let quota: ResourceQuota = serde_json::from_value(docs[1].clone()).unwrap();
    let hard = quota.spec.unwrap().hard.unwrap();
    assert_eq!(hard["pods"].0, "3");
    assert_eq!(hard["limits.memory"].0, "192Mi", "three students of 64M");
    assert_eq!(hard["limits.cpu"].0, "1500m");
    assert_eq!(hard["persistentvolumeclaims"].0, "3");
    let policy: NetworkPolicy = serde_json::from_value(docs[2].clone()).unwrap();
    let policy = policy.spec.unwrap();
    assert_eq!(policy.policy_types.unwrap(), ["Ingress", "Egress"]);
    assert!(policy.ingress.is_none() && policy.egress.is_none(), "loopback: nothing in, nothing out");

    // Named after the student: inserting a name shifts nobody.
    let names: Vec<String> = docs[4..].iter().map(|d| d["metadata"]["name"].as_str().unwrap().to_string()).collect();
    assert_eq!(names, ["alice", "bob", "carol"]);
    let alice: StatefulSet = serde_json::from_value(docs[4].clone()).unwrap();
    let spec = alice.spec.unwrap();
    assert_eq!(spec.replicas, Some(1));
    let claim = &spec.volume_claim_templates.as_ref().unwrap()[0];
    assert_eq!(claim.metadata.name.as_deref(), Some("home"));
    assert_eq!(
        claim.spec.as_ref().unwrap().resources.as_ref().unwrap().requests.as_ref().unwrap()["storage"].0,
        "2Gi",
        "the home claim takes [limits] disk"
    );
    let pod = spec.template.spec.unwrap();
    let container = &pod.containers[0];
    assert_eq!(container.image.as_deref(), Some(image));
    let mounts = container.volume_mounts.as_ref().unwrap();
    assert!(mounts.iter().any(|m| m.name == "home" && m.mount_path == "/home/student"), "home on the student's claim");
    assert!(container.env.as_ref().unwrap().iter().any(|e| e.name == "SANDBOX_STUDENT" && e.value.as_deref() == Some("alice")));
    let security = container.security_context.as_ref().unwrap();
    assert_eq!(security.allow_privilege_escalation, Some(false));
    assert_eq!(security.read_only_root_filesystem, Some(true));
    assert_eq!(security.capabilities.as_ref().unwrap().drop.as_deref(), Some(&["ALL".to_string()][..]));
    // Only NET_RAW may come back, for ping's file capability (nothing is gained with no_new_privs).
    let added = security.capabilities.as_ref().unwrap().add.clone().unwrap_or_default();
    assert!(added.iter().all(|c| c == "NET_RAW"), "{added:?}");
    let pod_security = pod.security_context.as_ref().unwrap();
    assert_eq!((pod_security.run_as_user, pod_security.run_as_non_root, pod_security.fs_group), (Some(1000), Some(true), Some(1000)));
    assert_eq!(pod.automount_service_account_token, Some(false));
    let limits = container.resources.as_ref().unwrap().limits.as_ref().unwrap();
    assert_eq!((limits["memory"].0.as_str(), limits["cpu"].0.as_str()), ("64Mi", "500m"));
    assert_eq!(limits["ephemeral-storage"].0, "2Gi", "[limits] disk");
    // The lab file under the home is copied onto a new claim once, by the image itself.
    let init = &pod.init_containers.as_ref().unwrap()[0];
    assert_eq!(init.image.as_deref(), Some(image));
    assert!(init.volume_mounts.as_ref().unwrap().iter().any(|m| m.name == "home"));
    // Run at every pod start, as Kubernetes does, by podman too (its default `once` races on 4.3).
    assert_eq!(docs[4]["spec"]["template"]["metadata"]["annotations"]["io.podman.annotations.init.container.type"], "always");
    assert!(yaml.contains("podPidsLimit"), "pids is noted where only the kubelet sets it");

    // Every label and annotation value fits the 63 characters podman and Kubernetes allow.
    fn check_values(value: &serde_json::Value, key: &str) {
        match value {
            serde_json::Value::Object(map) => {
                for (k, v) in map {
                    if k == "labels" || k == "annotations" {
                        for (name, text) in v.as_object().unwrap() {
                            assert!(text.as_str().unwrap().len() <= 63, "{key}.{k}.{name} is longer than 63");
                        }
                    }
                    check_values(v, k);
                }
            }
            serde_json::Value::Array(items) => items.iter().for_each(|i| check_values(i, key)),
            _ => {}
        }
    }
    docs.iter().for_each(|d| check_values(d, ""));

    let bad = dir.path().join("passwd");
    fs::write(&bad, "root:x:0:0:root:/root:/bin/bash\n").unwrap();
    let output = run(sandbox().arg("export").arg(&lab).arg("--k8s").arg("--students").arg(&bad));
    assert_eq!(output.status.code(), Some(125));
    // The shared names reader refuses a passwd line by its file and line number, and never echoes it.
    let refused = stderr(&output);
    assert!(refused.contains(&format!("{}:1: not a name", bad.display())), "{refused}");
    assert!(!refused.contains("root:x") && !refused.contains("/bin/bash"), "the line is not shown: {refused}");
    let output = run(sandbox().arg("export").arg(&lab).args(["--k8s", "--image", "Not A Ref"]));
    assert_eq!(output.status.code(), Some(125));
    assert!(stderr(&output).contains("--image"), "{}", stderr(&output));
}

/// The directory of kubernetes-validate's Python, to ask which schema versions it ships.
fn kubernetes_validate_versions() -> Vec<String> {
    let script = "import kubernetes_validate.utils as u; from packaging.version import Version; \
                  print('\\n'.join(sorted(set(u.all_versions()), key=Version)[-3:]))";
    let program = String::from_utf8(run(Command::new("sh").args(["-c", "command -v kubernetes-validate"])).stdout).unwrap();
    let interpreter = fs::read_to_string(program.trim()).unwrap().lines().next().unwrap().trim_start_matches("#!").trim().to_string();
    let versions = ok(Command::new(&interpreter).args(["-c", script]));
    versions.lines().map(str::to_owned).collect()
}

#[test]
fn the_manifests_validate_strictly_against_the_three_newest_kubernetes_schemas() {
    if !need_program("kubernetes-validate", "pip install kubernetes-validate; .ci/run does") {
        return;
    }
    let (dir, lab) = lab();
    let pod = dir.path().join("pod.yaml");
    fs::write(&pod, ok(sandbox().arg("export").arg(&lab).arg("--k8s"))).unwrap();
    let class = dir.path().join("class.yaml");
    fs::write(&class, ok(sandbox().arg("export").arg(&lab).arg("--k8s").arg("--students").arg(students_file(dir.path())))).unwrap();
    let versions = kubernetes_validate_versions();
    assert_eq!(versions.len(), 3, "{versions:?}");
    for version in &versions {
        for file in [&pod, &class] {
            let output = run(Command::new("kubernetes-validate").args(["--strict", "-k", version]).arg(file));
            assert!(
                output.status.success(),
                "{} does not validate against Kubernetes {version}:\n{}{}",
                file.display(),
                stdout(&output),
                stderr(&output)
            );
        }
    }
    // The validator is strict: an unknown field fails (so the check above means something).
    let bad = dir.path().join("bad.yaml");
    fs::write(&bad, fs::read_to_string(&pod).unwrap().replace("automountServiceAccountToken", "automountServiceAccountTokn")).unwrap();
    assert!(!run(Command::new("kubernetes-validate").args(["--strict", "-k", &versions[2]]).arg(&bad)).status.success());
}

#[test]
fn podman_kube_play_runs_the_pod_with_its_home_and_ping() {
    let Some(podman) = Podman::new() else { return };
    let (dir, lab) = lab();
    let archive = dir.path().join("lab.tar");
    let (out, _) = (ok(sandbox().arg("export").arg(&lab).arg("--tar").arg(&archive)), ());
    assert!(out.contains("sandbox/k8s-lab:latest"), "{out}");
    let loaded = podman.sh(&format!("load -i {}", archive.display()));
    assert!(loaded.status.success(), "{}", stderr(&loaded));
    let yaml = dir.path().join("pod.yaml");
    let manifests = ok(sandbox().arg("export").arg(&lab).arg("--k8s"));
    fs::write(&yaml, &manifests).unwrap();
    // podman 4.3's `kube play` ignores the pod's sysctls (ping_group_range, for ping over ICMP
    // sockets): the storage's containers.conf gives the containers the manifest's own.
    let pod = documents(&manifests).into_iter().find(|d| d["kind"] == "Pod").unwrap();
    let sysctls: Vec<String> = pod["spec"]["securityContext"]["sysctls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| format!("{}={}", s["name"].as_str().unwrap(), s["value"].as_str().unwrap()))
        .collect();
    assert!(sysctls.iter().any(|s| s.starts_with("net.ipv4.ping_group_range=")), "{sysctls:?}");
    podman.set_sysctls(&sysctls);
    let played = podman.sh_isolated(&format!("kube play --network none {}", yaml.display()));
    assert!(played.status.success(), "podman kube play failed:\n{}{}", stdout(&played), stderr(&played));
    // The pod's command runs once and ends; its log is the evidence.
    let mut logs = String::new();
    for _ in 0..120 {
        // The container has a terminal (tty: true): its lines end in \r\n.
        logs = stdout(&podman.sh("logs k8s-lab-k8s-lab")).replace("\r\n", "\n");
        if logs.contains("ping-ok") || logs.contains("ping:") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    assert!(
        logs.contains("student\nWelcome to the lab\nwork\nping-ok"),
        "the user, the lab file copied to the home claim, a writable home, ping:\n{logs}"
    );
}
