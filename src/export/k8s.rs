//! `--k8s [--students FILE] [--image REF]`: the environment for a Kubernetes cluster.
//!
//! Without students: a Pod, the PersistentVolumeClaim of its home and its
//! NetworkPolicy, for the current namespace. With students, a class: a
//! Namespace with a ResourceQuota (the sum of the students' limits), a
//! NetworkPolicy from `[network]`, a headless Service, and per student a
//! StatefulSet of one replica named after the student (so `alice` stays
//! alice however the list changes), whose pod `alice-0` keeps its home on a
//! claim of its own (`home-alice-0`) across restarts and reschedules.
//!
//! The container is as locked down as `sandbox run` makes it: its user, no
//! privilege escalation, every capability dropped (root keeps Docker's
//! default set), seccomp RuntimeDefault, a read-only root with a tmpfs /tmp,
//! no service account token, and `[limits]` as resources. The documents come
//! in an order `kubectl apply -f` takes in one go (the Namespace first).
//! Label and annotation values stay within 63 characters (podman kube play
//! refuses longer ones).

use std::io::Read;
use std::path::Path;

use serde_json::{Value, json};

use super::{ExportError, Result};
use crate::profile::{NetworkMode, Profile};
use crate::resolve::{Kind, Manifest};

/// A StatefulSet's name goes into its pods' `controller-revision-hash`
/// label with a suffix of 11 characters; 63 - 11 = 52.
const MAX_STUDENT: usize = 52;

/// A students file is a list of names; this bounds what `--students /dev/zero` reads.
const MAX_STUDENTS_BYTES: u64 = 1 << 20;

/// The home claim's size when none is given.
pub const DEFAULT_HOME_SIZE: u64 = 1 << 30;

/// What the manifest is made of, besides the profile.
pub struct Class<'a> {
    pub profile: &'a Profile,
    /// The rootfs digest.
    pub digest: &'a str,
    /// The rootfs, to see whether the home holds lab files and the image can copy them.
    pub manifest: &'a Manifest,
    /// `REGISTRY/NAME[:TAG]`; default `sandbox/NAME:SHORT_DIGEST`, what `--tar` loads as.
    pub image: Option<&'a str>,
    pub students: Option<&'a [String]>,
    /// Bytes of each home claim.
    pub home_size: u64,
}

/// Read a students file: bounded, UTF-8, one name a line.
pub fn read_students(path: &Path) -> Result<Vec<String>> {
    let fail = |cause: String| ExportError::Invalid(format!("--students {}: {cause}", path.display()));
    let file = std::fs::File::open(path).map_err(|e| fail(e.to_string()))?;
    if file.metadata().is_ok_and(|m| m.is_dir()) {
        return Err(fail("it is a directory\n  fix: give a text file with one student name a line".into()));
    }
    let mut bytes = Vec::new();
    file.take(MAX_STUDENTS_BYTES + 1).read_to_end(&mut bytes).map_err(|e| fail(e.to_string()))?;
    if bytes.len() as u64 > MAX_STUDENTS_BYTES {
        return Err(fail("it is larger than 1 MiB, which no list of students is\n  fix: give a text file with one name a line".into()));
    }
    let text = String::from_utf8(bytes).map_err(|_| fail("it is not UTF-8 text".into()))?;
    parse_students(&text).map_err(|e| fail(e.to_string()))
}

/// The names in a students file: one a line; blank lines and `#` comments
/// skipped. Each must be a name Kubernetes accepts (a DNS label), since the
/// student's StatefulSet, pod and claim are named after it.
pub fn parse_students(text: &str) -> Result<Vec<String>> {
    let mut names: Vec<String> = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line_number = number + 1;
        let name = line.split('#').next().unwrap_or("").trim();
        if name.is_empty() {
            continue;
        }
        if !is_student_name(name) {
            // The line is not echoed: the file may be one that should not be shown (/etc/shadow).
            return Err(ExportError::Invalid(format!(
                "line {line_number}: not a student name Kubernetes accepts\n  fix: use lower-case letters, digits and `-` (up to {MAX_STUDENT}, starting and ending with a letter or digit), one name a line"
            )));
        }
        if names.iter().any(|n| n == name) {
            return Err(ExportError::Invalid(format!("line {line_number}: `{name}` is listed twice; each student needs one pod")));
        }
        names.push(name.to_owned());
    }
    if names.is_empty() {
        return Err(ExportError::Invalid("the students file names nobody\n  fix: write one student name a line".into()));
    }
    Ok(names)
}

fn is_student_name(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && b.len() <= MAX_STUDENT
        && b.iter().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

/// Check `--image REGISTRY/NAME[:TAG]` (or `@sha256:...`) as a container
/// runtime parses references, so a typo fails here and not in the cluster.
pub fn check_image_reference(reference: &str) -> Result<()> {
    let bad = |why: &str| {
        ExportError::Invalid(format!(
            "--image `{}`: {why}\n  fix: give REGISTRY/NAME[:TAG], e.g. registry.example.com:5000/class/shell:2026",
            reference.escape_debug()
        ))
    };
    let (rest, digest) = match reference.split_once('@') {
        Some((rest, digest)) => (rest, Some(digest)),
        None => (reference, None),
    };
    if let Some(digest) = digest {
        let hex = digest.strip_prefix("sha256:").ok_or_else(|| bad("only sha256 digests are known"))?;
        if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()) {
            return Err(bad("the digest is not 64 lower-case hex digits"));
        }
    }
    // A tag is after the last `:` that follows the last `/` (a registry may have a port).
    let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
    let (name, tag) = match rest[last_slash..].rfind(':') {
        Some(i) => (&rest[..last_slash + i], Some(&rest[last_slash + i + 1..])),
        None => (rest, None),
    };
    if let Some(tag) = tag {
        let ok = !tag.is_empty()
            && tag.len() <= 128
            && (tag.as_bytes()[0].is_ascii_alphanumeric() || tag.starts_with('_'))
            && tag.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
        if !ok {
            return Err(bad("the tag may hold letters, digits, `_`, `.` and `-` (up to 128)"));
        }
    }
    let mut parts: Vec<&str> = name.split('/').collect();
    if parts.len() > 1 && (parts[0].contains(['.', ':']) || parts[0] == "localhost") {
        let registry = parts.remove(0);
        let (host, port) = registry.split_once(':').unwrap_or((registry, "0"));
        let host_ok = !host.is_empty() && host.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-'));
        if !host_ok || port.parse::<u16>().is_err() {
            return Err(bad("the registry is not HOST or HOST:PORT"));
        }
    }
    let component_ok = |c: &str| {
        let b = c.as_bytes();
        !b.is_empty()
            && b.iter().all(|x| x.is_ascii_lowercase() || x.is_ascii_digit() || matches!(x, b'.' | b'_' | b'-'))
            && b[0].is_ascii_alphanumeric()
            && b[b.len() - 1].is_ascii_alphanumeric()
    };
    if parts.is_empty() || !parts.iter().all(|c| component_ok(c)) {
        return Err(bad("the name's parts must be lower-case letters, digits and separators"));
    }
    Ok(())
}

/// The YAML manifest: documents separated by `---`, after a comment that
/// says how to get the image onto the cluster and what could not be carried over.
pub fn manifest(class: &Class) -> Result<String> {
    let image = class.image.map(str::to_owned).unwrap_or_else(|| super::image_reference(class.profile, class.digest));
    let documents = match class.students {
        None => vec![home_claim(class, &home_claim_name(class.profile)), network_policy(class, None), pod(class, &image)],
        Some(names) => {
            let namespace = namespace_name(class.profile);
            let mut documents = vec![
                json!({ "apiVersion": "v1", "kind": "Namespace", "metadata": { "name": namespace, "labels": common_labels(class) } }),
                quota(class, &namespace, names.len()),
                network_policy(class, Some(&namespace)),
                service(class, &namespace),
            ];
            documents.extend(names.iter().map(|student| stateful_set(class, &namespace, &image, student)));
            documents
        }
    };
    let mut text = header(class, &image);
    for document in documents {
        text.push_str("---\n");
        text.push_str(&serde_norway::to_string(&document).map_err(|e| ExportError::Invalid(format!("YAML: {e}")))?);
    }
    Ok(text)
}

fn header(class: &Class, image: &str) -> String {
    let profile = class.profile;
    let name = &profile.name;
    let mut text = format!(
        "# {name}: generated by `sandbox export {name} --k8s`; apply it with `kubectl apply -f FILE`.\n\
         # The image {image} must be where the nodes pull from (README: \"Kubernetes\"):\n\
         #   sandbox export {name} --tar {name}.tar && skopeo copy docker-archive:{name}.tar docker://REGISTRY/{name}:TAG\n\
         #   and export again with --image REGISTRY/{name}:TAG; or load the archive on every node\n\
         #   (`ctr -n k8s.io images import {name}.tar`, `podman load -i {name}.tar`).\n"
    );
    if let Some(names) = class.students {
        text += &format!(
            "# The class: namespace {}, one StatefulSet per student ({} students); `kubectl -n {} attach -it alice-0` is alice's terminal.\n",
            namespace_name(profile),
            names.len(),
            namespace_name(profile)
        );
    }
    if let Some(pids) = profile.limits.pids {
        text += &format!(
            "# [limits] pids = {pids}: Kubernetes limits pids per pod only through the kubelet (podPidsLimit in its configuration), not in a manifest.\n"
        );
    }
    if has_home_files(class) && !can_seed_home(class.manifest) {
        text += &format!(
            "# The lab files under {} are hidden by the home volume: the rootfs has no /bin/sh and cp to copy them onto it.\n",
            profile.user.home
        );
    }
    for m in &profile.mounts {
        text += &format!("# [[mounts]] {} -> {} is a host directory: not carried over; use a volume.\n", m.source.display(), m.target);
    }
    text
}

fn namespace_name(profile: &Profile) -> String {
    let mut name = format!("sandbox-{}", profile.name);
    name.truncate(63);
    name.trim_end_matches('-').to_owned()
}

fn home_claim_name(profile: &Profile) -> String {
    format!("{}-home", profile.name.trim_end_matches('-'))
}

/// Labels every object carries (values within 63 characters).
fn common_labels(class: &Class) -> Value {
    json!({
        "app.kubernetes.io/name": class.profile.name,
        "app.kubernetes.io/managed-by": "sandbox",
        "io.sandbox/digest": crate::rootfs::digest::short(class.digest),
    })
}

fn pod_labels(class: &Class, student: Option<&str>) -> Value {
    let mut labels = common_labels(class);
    if let Some(student) = student {
        labels["io.sandbox/student"] = json!(student);
    }
    labels
}

/// The annotation that tells `podman kube play` how to run init containers.
const PODMAN_INIT_TYPE: &str = "io.podman.annotations.init.container.type";

/// A pod's metadata: its labels and, with an init container, podman's init type
/// `always`: what Kubernetes does (init containers run at every pod start; the
/// home seed is idempotent), where podman's default `once` removes it after its
/// first run, and podman 4.3 races on that removal ("cannot remove container
/// ... as it is running", podman#18477).
fn pod_metadata(mut metadata: Value, spec: &Value) -> Value {
    if spec.get("initContainers").is_some() {
        metadata["annotations"] = json!({ PODMAN_INIT_TYPE: "always" });
    }
    metadata
}

fn pod(class: &Class, image: &str) -> Value {
    let mut spec = pod_spec(class, image, None, Some(&home_claim_name(class.profile)));
    spec["hostname"] = json!(class.profile.run.hostname);
    let metadata = pod_metadata(json!({ "name": class.profile.name.trim_end_matches('-'), "labels": pod_labels(class, None) }), &spec);
    json!({ "apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec })
}

fn home_claim(class: &Class, name: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": { "name": name, "labels": common_labels(class) },
        "spec": claim_spec(class),
    })
}

fn claim_spec(class: &Class) -> Value {
    json!({ "accessModes": ["ReadWriteOnce"], "resources": { "requests": { "storage": memory_quantity(class.home_size) } } })
}

/// One student: a StatefulSet of one, so the pod is rescheduled and keeps its claim.
fn stateful_set(class: &Class, namespace: &str, image: &str, student: &str) -> Value {
    let selector = json!({ "app.kubernetes.io/name": class.profile.name, "io.sandbox/student": student });
    let mut spec = pod_spec(class, image, Some(student), None);
    spec["subdomain"] = json!(service_name(class));
    json!({
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": { "name": student, "namespace": namespace, "labels": pod_labels(class, Some(student)) },
        "spec": {
            "serviceName": service_name(class),
            "replicas": 1,
            "selector": { "matchLabels": selector },
            "template": { "metadata": pod_metadata(json!({ "labels": pod_labels(class, Some(student)) }), &spec), "spec": spec },
            "volumeClaimTemplates": [{ "metadata": { "name": "home", "labels": common_labels(class) }, "spec": claim_spec(class) }],
            // A student's work outlives the class's objects: deleting them keeps the claims.
            "persistentVolumeClaimRetentionPolicy": { "whenDeleted": "Retain", "whenScaled": "Retain" },
        },
    })
}

fn service_name(class: &Class) -> String {
    class.profile.name.trim_end_matches('-').to_owned()
}

/// The headless Service that gives each student's pod a stable DNS name.
fn service(class: &Class, namespace: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": { "name": service_name(class), "namespace": namespace, "labels": common_labels(class) },
        "spec": { "clusterIP": "None", "selector": { "app.kubernetes.io/name": class.profile.name } },
    })
}

/// What the class may use at most: the students' limits added up.
fn quota(class: &Class, namespace: &str, students: usize) -> Value {
    let n = students as u64;
    let limits = &class.profile.limits;
    let mut hard = serde_json::Map::new();
    hard.insert("pods".into(), json!(n.to_string()));
    hard.insert("persistentvolumeclaims".into(), json!(n.to_string()));
    hard.insert("requests.storage".into(), json!(memory_quantity(class.home_size * n)));
    if let Some(memory) = limits.memory {
        for key in ["requests.memory", "limits.memory"] {
            hard.insert(key.into(), json!(memory_quantity(memory * n)));
        }
    }
    if let Some(cores) = limits.cpu {
        for key in ["requests.cpu", "limits.cpu"] {
            hard.insert(key.into(), json!(millicores(cores * n as f64)));
        }
    }
    json!({
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": { "name": "class", "namespace": namespace, "labels": common_labels(class) },
        "spec": { "hard": hard },
    })
}

/// `[network]`: none and loopback let no traffic in or out of a pod (its
/// loopback stays); host lets it out, but nothing in (students do not reach
/// each other).
fn network_policy(class: &Class, namespace: Option<&str>) -> Value {
    let mut metadata = json!({ "name": format!("{}-network", class.profile.name.trim_end_matches('-')), "labels": common_labels(class) });
    if let Some(namespace) = namespace {
        metadata["namespace"] = json!(namespace);
    }
    let mut spec = json!({
        "podSelector": { "matchLabels": { "app.kubernetes.io/name": class.profile.name } },
        "policyTypes": ["Ingress", "Egress"],
    });
    if class.profile.network == NetworkMode::Host {
        spec["egress"] = json!([{}]);
    }
    json!({ "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": metadata, "spec": spec })
}

/// The pod of the profile, for one student or for the Pod form (`claim` names its home claim).
fn pod_spec(class: &Class, image: &str, student: Option<&str>, claim: Option<&str>) -> Value {
    let profile = class.profile;
    let mut container = container(class, image);
    if let Some(student) = student {
        container["env"] = json!([{ "name": "SANDBOX_STUDENT", "value": student }]);
    }
    let home_volume = match claim {
        Some(claim) => json!({ "name": "home", "persistentVolumeClaim": { "claimName": claim } }),
        // A StatefulSet's claim template is named `home` and bound by that name.
        None => Value::Null,
    };
    let mut volumes = vec![tmp_volume(profile)];
    if !home_volume.is_null() {
        volumes.push(home_volume);
    }
    let mut security = json!({
        "runAsUser": profile.user.uid,
        "runAsGroup": profile.user.gid,
        "seccompProfile": { "type": "RuntimeDefault" },
        // ping over ICMP sockets, as in `sandbox run`: a safe, per-pod sysctl.
        "sysctls": [{ "name": "net.ipv4.ping_group_range", "value": format!("0 {}", i32::MAX) }],
    });
    if profile.user.uid != 0 {
        security["runAsNonRoot"] = json!(true);
        // The home volume is made writable for the student's group.
        security["fsGroup"] = json!(profile.user.gid);
    }
    let mut spec = json!({
        "automountServiceAccountToken": false,
        "enableServiceLinks": false,
        "securityContext": security,
        "containers": [container],
        "volumes": volumes,
    });
    if has_home_files(class) && can_seed_home(class.manifest) {
        spec["initContainers"] = json!([seed_container(class, image)]);
    }
    spec
}

fn container(class: &Class, image: &str) -> Value {
    let profile = class.profile;
    json!({
        "name": profile.name.trim_end_matches('-'),
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "command": profile.run.command,
        "workingDir": super::workdir(profile),
        // The lab's command is usually an interactive shell: `kubectl attach -it`.
        "stdin": true,
        "tty": true,
        "resources": resources(profile),
        "securityContext": container_security(profile, needs_net_raw(class.manifest)),
        "volumeMounts": [{ "name": "tmp", "mountPath": "/tmp" }, { "name": "home", "mountPath": profile.user.home }],
    })
}

/// Whether a program of the rootfs carries CAP_NET_RAW as a file capability
/// (Debian's ping). The kernel refuses to start such a program when the
/// capability is outside the bounding set ("Operation not permitted"), so the
/// container keeps NET_RAW in it: with no_new_privs and a user that is not
/// root, nothing is gained from it, and ping then uses an ICMP socket.
fn needs_net_raw(manifest: &Manifest) -> bool {
    const CAP_NET_RAW: u32 = 13;
    manifest.entries.values().filter_map(|e| e.capability.as_deref()).any(|cap| {
        // vfs_cap_data: magic_etc, then the low 32 bits of `permitted`.
        cap.get(4..8).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]])).is_some_and(|low| low & (1 << CAP_NET_RAW) != 0)
    })
}

fn container_security(profile: &Profile, net_raw: bool) -> Value {
    let mut security = json!({
        "allowPrivilegeEscalation": false,
        "privileged": false,
        "readOnlyRootFilesystem": true,
        "capabilities": { "drop": ["ALL"] },
    });
    if profile.user.uid == 0 {
        let kept: Vec<&str> = crate::plan::ROOT_CAPABILITIES.iter().map(|c| c.trim_start_matches("CAP_")).collect();
        security["capabilities"]["add"] = json!(kept);
    } else {
        security["runAsNonRoot"] = json!(true);
        if net_raw {
            security["capabilities"]["add"] = json!(["NET_RAW"]);
        }
    }
    security
}

/// The lab files of the image's home, copied onto a new (empty) home claim
/// once; a claim that holds the student's work is left alone.
fn seed_container(class: &Class, image: &str) -> Value {
    let home = &class.profile.user.home;
    let script = "[ -e /seed/.sandbox-home ] || { cp -a \"$HOME_IN_IMAGE\"/. /seed/ && : > /seed/.sandbox-home; }";
    json!({
        "name": "home",
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "command": ["/bin/sh", "-c", script],
        "env": [{ "name": "HOME_IN_IMAGE", "value": home }],
        "resources": resources(class.profile),
        "securityContext": container_security(class.profile, false),
        "volumeMounts": [{ "name": "home", "mountPath": "/seed" }],
    })
}

/// Whether the rootfs has files under the user's home (lab files) that a volume would hide.
fn has_home_files(class: &Class) -> bool {
    let home = Path::new(&class.profile.user.home);
    class.manifest.entries.keys().any(|p| p.starts_with(home) && p != home)
}

/// Whether the image can copy its home onto the claim: /bin/sh and cp.
fn can_seed_home(manifest: &Manifest) -> bool {
    let present = |path: &str| {
        manifest
            .locate(path)
            .and_then(|p| manifest.entries.get(&p))
            .is_some_and(|e| matches!(e.kind, Kind::File { .. } | Kind::Symlink { .. }))
    };
    present("/bin/sh") && (present("/bin/cp") || present("/usr/bin/cp"))
}

/// Limits, and the same requests so the scheduler reserves what a student may use.
fn resources(profile: &Profile) -> Value {
    let mut limits = serde_json::Map::new();
    if let Some(memory) = profile.limits.memory {
        limits.insert("memory".into(), json!(memory_quantity(memory)));
    }
    if let Some(cores) = profile.limits.cpu {
        limits.insert("cpu".into(), json!(millicores(cores)));
    }
    // The root is read-only and home is a claim: what is left to cap (logs, a
    // disk-backed emptyDir) is ephemeral storage, at the instance's disk cap.
    if let Some(disk) = profile.limits.disk {
        limits.insert("ephemeral-storage".into(), json!(memory_quantity(disk)));
    }
    if limits.is_empty() {
        return json!({});
    }
    json!({ "limits": limits, "requests": limits })
}

fn millicores(cores: f64) -> String {
    format!("{}m", (cores * 1000.0).round() as u64)
}

/// The writable /tmp of a read-only root: a memory-backed emptyDir, as the tmpfs of `sandbox run`.
fn tmp_volume(profile: &Profile) -> Value {
    let mut empty_dir = json!({ "medium": "Memory" });
    if let Some(size) = profile.limits.tmp {
        empty_dir["sizeLimit"] = json!(memory_quantity(size));
    }
    json!({ "name": "tmp", "emptyDir": empty_dir })
}

/// Bytes as a Kubernetes quantity: `256Mi` when it divides evenly, else plain bytes.
pub fn memory_quantity(bytes: u64) -> String {
    for (unit, size) in [("Ti", 1u64 << 40), ("Gi", 1 << 30), ("Mi", 1 << 20), ("Ki", 1 << 10)] {
        if bytes >= size && bytes.is_multiple_of(size) {
            return format!("{}{unit}", bytes / size);
        }
    }
    bytes.to_string()
}

/// `--home-size`: `1Gi`, `512Mi`, `2G` (binary units, as the profile's sizes), or bytes.
pub fn parse_size(text: &str) -> Result<u64> {
    let trimmed = text.trim();
    let split = trimmed.find(|c: char| !c.is_ascii_digit()).unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(split);
    let shift = match unit {
        "" => 0,
        "K" | "Ki" => 10,
        "M" | "Mi" => 20,
        "G" | "Gi" => 30,
        "T" | "Ti" => 40,
        _ => u32::MAX,
    };
    let value: Option<u64> = number.parse().ok().filter(|_| shift != u32::MAX);
    value.and_then(|v| v.checked_mul(1u64 << shift.min(40))).filter(|v| *v > 0).ok_or_else(|| {
        ExportError::Invalid(format!("--home-size `{}` is not a size\n  fix: write e.g. 1Gi, 512Mi or 2G", text.escape_debug()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn students_file_skips_comments_and_rejects_duplicates_and_bad_names() {
        assert_eq!(parse_students("# class A\nalice\n\n bob  # late\n").unwrap(), ["alice", "bob"]);
        assert!(parse_students("alice\nalice\n").unwrap_err().to_string().contains("line 2: `alice` is listed twice"));
        assert!(parse_students("# nobody\n").is_err());
        let shadow = parse_students("root:$y$j9T$secret:19000:0:99999:7:::\n").unwrap_err().to_string();
        assert!(shadow.contains("line 1") && !shadow.contains("secret"), "{shadow}");
        for bad in ["Alice", "김철수", "-x", "a_b", &"x".repeat(53)] {
            assert!(parse_students(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn quantities_and_sizes() {
        assert_eq!(memory_quantity(256 << 20), "256Mi");
        assert_eq!(memory_quantity(1 << 30), "1Gi");
        assert_eq!(memory_quantity(1000), "1000");
        assert_eq!(parse_size("2G").unwrap(), 2 << 30);
        assert_eq!(parse_size("512Mi").unwrap(), 512 << 20);
        assert!(parse_size("1.5G").is_err() && parse_size("0").is_err() && parse_size("9999999999T").is_err());
    }

    #[test]
    fn image_references() {
        for good in [
            "sandbox/shell:abc",
            "registry.example.com:5000/class/shell:2026",
            "localhost/shell",
            "ghcr.io/a/b/c@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        ] {
            check_image_reference(good).unwrap_or_else(|e| panic!("{good}: {e}"));
        }
        for bad in ["Shell", "sandbox/shell:", "reg:notaport/x", "a//b", "x@md5:00", "x:tag with space"] {
            assert!(check_image_reference(bad).is_err(), "{bad}");
        }
    }
}
