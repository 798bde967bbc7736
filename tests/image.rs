//! deploy/image: the container image's Dockerfile says what the gateway needs, checked without
//! a container daemon (none runs here; docs/deploy.md says what that leaves unverified).
//!
//! - Two stages, each from a pinned tag: the build stage's Rust is the repository's toolchain,
//!   the runtime stage's Debian release is the one this machine runs, so its package database
//!   answers for the image's.
//! - The build stage builds the `dist` profile (stripped) without the lab, and the runtime stage
//!   copies exactly that binary to the path of its ENTRYPOINT.
//! - Every program mcwan runs (`Command::new("..")` and gather's host commands in src/, and the
//!   manifests' shell scripts) is in a package the runtime stage installs, or an Essential one
//!   that every Debian image has; each package name exists in this Debian release.
//! - The build context leaves out target/ and .git.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers fail the test on any error

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// One Dockerfile instruction: its keyword (upper-case) and its arguments, with line
/// continuations joined and comments dropped.
#[derive(Debug)]
struct Instruction {
    keyword: String,
    args: String,
}

fn instructions(text: &str) -> Vec<Instruction> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if current.is_empty() && (trimmed.is_empty() || trimmed.starts_with('#')) {
            continue;
        }
        if trimmed.starts_with('#') {
            continue; // a comment inside a continued instruction
        }
        match trimmed.strip_suffix('\\') {
            Some(part) => {
                current.push_str(part);
                current.push(' ');
            }
            None => {
                current.push_str(trimmed);
                let (keyword, args) = current.split_once(char::is_whitespace).unwrap();
                out.push(Instruction {
                    keyword: keyword.to_ascii_uppercase(),
                    args: args.trim().to_owned(),
                });
                current.clear();
            }
        }
    }
    assert!(
        current.is_empty(),
        "the Dockerfile ends inside a continued line"
    );
    out
}

/// The stages: each FROM and the instructions after it.
fn stages(all: Vec<Instruction>) -> Vec<(String, Vec<Instruction>)> {
    let mut out: Vec<(String, Vec<Instruction>)> = Vec::new();
    for i in all {
        if i.keyword == "FROM" {
            out.push((i.args, Vec::new()));
        } else if let Some((_, body)) = out.last_mut() {
            body.push(i);
        }
    }
    out
}

fn dockerfile() -> Vec<(String, Vec<Instruction>)> {
    let text = std::fs::read_to_string(repo().join("deploy/image/Dockerfile")).unwrap();
    stages(instructions(&text))
}

/// The Debian packages an `apt-get install` in `run` names.
fn apt_installs(run: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for command in run.split("&&") {
        let words: Vec<&str> = command.split_whitespace().collect();
        if let Some(at) = words.windows(2).position(|w| w == ["apt-get", "install"]) {
            out.extend(
                words[at + 2..]
                    .iter()
                    .filter(|w| !w.starts_with('-'))
                    .map(|w| (*w).to_owned()),
            );
        }
    }
    out
}

/// The Debian packages of this machine that hold `program` in a bin directory.
fn packages_of(program: &str) -> BTreeSet<String> {
    let out = Command::new("dpkg")
        .args(["-S", &format!("*/{program}")])
        .output()
        .expect("dpkg");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_once(": "))
        .filter(|(_, path)| {
            ["/bin/", "/sbin/", "/usr/bin/", "/usr/sbin/"]
                .iter()
                .any(|d| path.strip_prefix(d) == Some(program))
        })
        .map(|(pkgs, _)| pkgs.rsplit(' ').next().unwrap_or(pkgs).to_owned())
        .collect()
}

fn is_essential(package: &str) -> bool {
    let out = Command::new("dpkg-query")
        .args(["-W", "-f", "${Essential}", package])
        .output()
        .expect("dpkg-query");
    String::from_utf8_lossy(&out.stdout).trim() == "yes"
}

/// Programs spawned by name in the Rust sources under `dir`.
fn programs_in_sources(dir: &Path, found: &mut BTreeSet<String>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            // The lab (network namespaces on the developer's host) is not in the image.
            if path.file_name().is_some_and(|n| n == "lab") {
                continue;
            }
            programs_in_sources(&path, found);
        } else if path.extension().is_some_and(|e| e == "rs")
            && path.file_name().is_some_and(|n| n != "demo.rs")
        {
            let text = std::fs::read_to_string(&path).unwrap();
            for marker in ["Command::new(\"", "host_command(\""] {
                for (at, _) in text.match_indices(marker) {
                    let rest = &text[at + marker.len()..];
                    let name = &rest[..rest.find('"').unwrap()];
                    if !name.is_empty() && !name.contains('/') {
                        found.insert(name.to_owned());
                    }
                }
            }
        }
    }
}

#[test]
fn the_stages_are_pinned_to_the_toolchain_and_this_debian_release() {
    let stages = dockerfile();
    assert_eq!(stages.len(), 2, "a build stage and a runtime stage");
    let toolchain = std::fs::read_to_string(repo().join("rust-toolchain.toml")).unwrap();
    let channel = toolchain
        .lines()
        .find_map(|l| l.trim().strip_prefix("channel = "))
        .unwrap()
        .trim_matches('"');
    let minor = channel.rsplit_once('.').unwrap().0; // 1.95.0 -> 1.95
    let build = &stages[0].0;
    assert!(
        build.starts_with(&format!("docker.io/library/rust:{minor}-"))
            && build.ends_with(" AS build"),
        "build stage {build:?}: the toolchain is {channel}"
    );
    let codename = std::fs::read_to_string("/etc/os-release")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VERSION_CODENAME="))
        .unwrap()
        .to_owned();
    assert!(
        build.contains(&format!("-{codename} ")),
        "the build stage's Debian is this machine's ({codename}): {build}"
    );
    assert_eq!(
        stages[1].0,
        format!("docker.io/library/debian:{codename}-slim"),
        "the runtime stage runs this machine's Debian release, so dpkg here answers for it"
    );
}

#[test]
fn the_image_ships_the_stripped_dist_binary_at_its_entrypoint() {
    let stages = dockerfile();
    let build_run = stages[0]
        .1
        .iter()
        .filter(|i| i.keyword == "RUN")
        .map(|i| i.args.as_str())
        .collect::<Vec<_>>()
        .join(" && ");
    for part in [
        "cargo build",
        "--profile dist",
        "--locked",
        "-p mcwan",
        "--no-default-features",
    ] {
        assert!(
            build_run.contains(part),
            "the build runs {part}: {build_run}"
        );
    }
    let (_, installed) = build_run
        .split("&&")
        .find_map(|c| c.trim().strip_prefix("install "))
        .and_then(|c| c.split_once("target/dist/mcwan"))
        .expect("the build installs target/dist/mcwan");
    let out_path = installed.trim();
    let cargo = std::fs::read_to_string(repo().join("Cargo.toml")).unwrap();
    let dist = cargo
        .split("[profile.dist]")
        .nth(1)
        .expect("a dist profile");
    let dist = dist.split("\n[").next().unwrap();
    assert!(
        dist.contains("strip = true"),
        "[profile.dist] strips: {dist}"
    );

    let runtime = &stages[1].1;
    let copy = runtime
        .iter()
        .find(|i| i.keyword == "COPY")
        .expect("the runtime stage copies the binary");
    let words: Vec<&str> = copy.args.split_whitespace().collect();
    assert_eq!(words, ["--from=build", out_path, "/usr/local/bin/mcwan"]);
    let entrypoint = runtime.iter().find(|i| i.keyword == "ENTRYPOINT").unwrap();
    assert_eq!(entrypoint.args, r#"["/usr/local/bin/mcwan"]"#);
}

#[test]
fn every_program_mcwan_runs_is_in_the_runtime_image() {
    let stages = dockerfile();
    let installed: BTreeSet<String> = stages[1]
        .1
        .iter()
        .filter(|i| i.keyword == "RUN")
        .flat_map(|i| apt_installs(&i.args))
        .collect();
    for p in &installed {
        let out = Command::new("apt-cache")
            .args(["show", "--no-all-versions", p])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "the image installs {p}, which this Debian release does not have"
        );
    }
    let mut programs = BTreeSet::new();
    for dir in ["src", "tunnel/src", "dns/src", "ipvs/src"] {
        programs_in_sources(&repo().join(dir), &mut programs);
    }
    // What the manifests' shell scripts run (deploy/base: the sysctl init container and the
    // route agent), and their shell.
    programs.extend(["sh", "ipvsadm", "ip", "sleep"].map(str::to_owned));
    assert!(
        programs.contains("nft"),
        "the scan finds the dataplane's nft: {programs:?}"
    );
    let mut missing = Vec::new();
    for program in &programs {
        let packages = packages_of(program);
        assert!(
            !packages.is_empty(),
            "no package of this machine holds {program} (scripts/install-test-deps installs the tools the tests use)"
        );
        if !packages
            .iter()
            .any(|p| installed.contains(p) || is_essential(p))
        {
            missing.push(format!("{program} (package {packages:?})"));
        }
    }
    assert!(
        missing.is_empty(),
        "not in the image: {missing:?}; it installs {installed:?}"
    );
}

#[test]
fn the_build_context_leaves_out_build_output_and_history() {
    let ignore =
        std::fs::read_to_string(repo().join("deploy/image/Dockerfile.dockerignore")).unwrap();
    let entries: BTreeSet<&str> = ignore
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    for needed in ["target", ".git"] {
        assert!(
            entries.contains(needed),
            "{needed} is sent to the builder: {entries:?}"
        );
    }
}
