//! The command line's own artefacts: shell completions that bash loads and completes with,
//! and the manual page.

#![allow(clippy::unwrap_used)] // test helpers fail the test on any error

use std::process::Command;

fn mcwan(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_mcwan"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "mcwan {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// What bash offers after `words` (the last one being completed), with mcwan's completion loaded.
fn bash_completes(script: &std::path::Path, words: &[&str]) -> Vec<String> {
    let words_array = words
        .iter()
        .map(|w| format!("'{w}'"))
        .collect::<Vec<_>>()
        .join(" ");
    let program = format!(
        "source '{}' && COMP_WORDS=({words_array}) && COMP_CWORD={} && COMP_LINE='{}' && COMP_POINT=${{#COMP_LINE}} && _mcwan mcwan '{}' '{}' && printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        script.display(),
        words.len() - 1,
        words.join(" "),
        words[words.len() - 1],
        words[words.len().saturating_sub(2)],
    );
    let out = Command::new("bash")
        .args(["-c", &program])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "bash: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn bash_loads_the_completion_and_completes_verbs_and_flags() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("mcwan.bash");
    std::fs::write(&script, mcwan(&["completions", "bash"])).unwrap();
    let syntax = Command::new("bash")
        .arg("-n")
        .arg(&script)
        .status()
        .unwrap();
    assert!(syntax.success(), "bash -n refuses the completion script");
    let verbs = bash_completes(&script, &["mcwan", "im"]);
    assert_eq!(verbs, ["import"], "{verbs:?}");
    let flags = bash_completes(&script, &["mcwan", "import", "payment/secure", "--ingress"]);
    assert_eq!(flags, ["--ingress-gw"], "{flags:?}");
    for shell in ["zsh", "fish", "elvish", "powershell"] {
        assert!(
            mcwan(&["completions", shell]).contains("gateway"),
            "{shell}"
        );
    }
}

#[test]
fn the_manual_page_names_every_verb() {
    let page = mcwan(&["man"]);
    assert!(
        page.starts_with(".ie") || page.contains(".TH mcwan 1"),
        "{page}"
    );
    assert!(page.contains(".TH mcwan 1"), "{page}");
    for verb in [
        "gateway", "plan", "status", "export", "import", "unimport", "version",
    ] {
        assert!(page.contains(verb), "the manual page does not name {verb}");
    }
}

#[test]
fn every_command_gets_a_manual_page_that_man_renders() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_mcwan"))
        .args(["man", "--dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for page in [
        "mcwan.1",
        "mcwan-gateway.1",
        "mcwan-export.1",
        "mcwan-status.1",
        "mcwan-import.1",
    ] {
        let path = dir.path().join(page);
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{page}: {e}"));
        assert!(text.contains(".TH"), "{page}: {text}");
        // man(1) formats it: the page's NAME section comes out as text.
        let rendered = Command::new("man")
            .args(["-P", "cat", "-l"])
            .arg(&path)
            .env("MANWIDTH", "100")
            .output()
            .expect("man (Debian's man-db)");
        let text = String::from_utf8_lossy(&rendered.stdout);
        assert!(
            rendered.status.success() && text.contains("NAME"),
            "{page}: {text}"
        );
    }
}
