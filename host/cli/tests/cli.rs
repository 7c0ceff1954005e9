//! End-to-end tests of the `missionctl` binary: the messages and exit codes a user sees.

use std::path::PathBuf;
use std::process::{Command, Output};

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"))
}

fn plugin_dir() -> PathBuf {
    target_dir().join("wasm32-wasip2/plugin")
}

fn missionctl(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_missionctl"))
        .args(args)
        .env("MISSIONCTL_PLUGIN_DIR", plugin_dir())
        .env("MISSIONCTL_CACHE_DIR", target_dir().join("test-component-cache"))
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn code(o: &Output) -> i32 {
    o.status.code().unwrap()
}

#[test]
fn help_and_version() {
    let o = missionctl(&["--help"]);
    assert_eq!(code(&o), 0);
    assert!(stdout(&o).contains("Run one plugin once, sandboxed"));
    let o = missionctl(&["--version"]);
    assert_eq!(stdout(&o).trim(), format!("missionctl {}", env!("CARGO_PKG_VERSION")));
    let o = missionctl(&["run", "--help"]);
    for flag in [
        "--input",
        "--fuel",
        "--memory-mb",
        "--timeout-ms",
        "--allow-host",
        "--config",
        "--json",
    ] {
        assert!(stdout(&o).contains(flag), "{flag} missing from run --help");
    }
}

#[test]
fn runs_a_plugin_by_name_and_prints_output_and_usage() {
    let o = missionctl(&[
        "run",
        "content-writer",
        "--input",
        r#"{"brief": "Spring sale on garden tools"}"#,
        "--config",
        "brand_voice=warm",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let out: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert!(out["title"].as_str().unwrap().starts_with("Offline draft:"));
    let err = stderr(&o);
    assert!(err.contains("voice: warm"), "{err}");
    assert!(
        err.contains("ok content-writer ·") && err.contains("AI 1 call"),
        "{err}"
    );
}

#[test]
fn json_mode_prints_one_document() {
    let path = plugin_dir().join("noop.wasm");
    let o = missionctl(&["run", path.to_str().unwrap(), "--input", "[1,2]", "--json"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let doc: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(doc["result"]["ok"], serde_json::json!([1, 2]));
    assert_eq!(doc["plugin"], "noop");
    assert!(doc["usage"]["fuel_consumed"].as_u64().unwrap() > 0);
}

#[test]
fn each_failure_kind_has_its_message_and_exit_code() {
    let cases: [(&[&str], i32, &str); 8] = [
        (
            &["--input", r#"{"mode":"loop"}"#, "--fuel", "1000000"],
            4,
            "error: out of fuel: the plugin used its whole budget of 1000000 fuel units",
        ),
        (
            &[
                "--input",
                r#"{"mode":"alloc"}"#,
                "--fuel",
                "10000000000",
                "--memory-mb",
                "8",
            ],
            5,
            "error: memory limit: the plugin tried to use more than 8 MiB of memory",
        ),
        (
            &[
                "--input",
                r#"{"mode":"loop"}"#,
                "--fuel",
                "1000000000000",
                "--timeout-ms",
                "200",
            ],
            6,
            "error: deadline exceeded: the run did not finish within 200 ms",
        ),
        (
            &["--input", r#"{"mode":"trap"}"#],
            7,
            "error: trap: wasm trap: wasm `unreachable` instruction executed",
        ),
        (
            &["--input", r#"{"mode":"recurse"}"#],
            8,
            "error: stack overflow: the plugin recursed too deeply",
        ),
        (
            &["--input", r#"{"mode":"http","url":"http://169.254.169.254/"}"#],
            9,
            "error: capability not granted: http://169.254.169.254:80 is not in this run's allow-list (no hosts are granted)",
        ),
        (
            &["--input", r#"{"mode":"not-json"}"#],
            10,
            "error: invalid output: the plugin returned text that is not JSON",
        ),
        (
            &["--input", r#"{"mode":"fail"}"#],
            1,
            "error: plugin error (upstream): the upstream service said no",
        ),
    ];
    for (args, expected_code, message) in cases {
        let mut all = vec!["run", "hostile"];
        all.extend_from_slice(args);
        let o = missionctl(&all);
        assert_eq!(code(&o), expected_code, "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(message), "{args:?}: {}", stderr(&o));
    }
}

#[test]
fn bad_input_gets_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    let text = dir.path().join("notes.wasm");
    std::fs::write(&text, "not wasm").unwrap();
    let core = dir.path().join("core.wasm");
    std::fs::write(&core, b"\0asm\x01\0\0\0").unwrap();
    let wrong_world = plugin_dir().join("wrong_world.wasm");
    let missing = dir.path().join("missing.wasm");
    let cases: Vec<(Vec<String>, i32, String)> = vec![
        (vec![missing.display().to_string()], 3, format!("error: plugin not found: {}", missing.display())),
        (vec!["no-such-plugin".into()], 3, "error: plugin not found: `no-such-plugin` (looked in".into()),
        (vec![text.display().to_string()], 3, "is not a WebAssembly file (it does not start with the \\0asm header)".into()),
        (vec![core.display().to_string()], 3, "is a core WebAssembly module, not a component".into()),
        (vec![wrong_world.display().to_string()], 3, "does not export `mission:control/handler@0.1.0`, so it is not a workflow plugin (its exports: wasi:cli/run@".into()),
        (vec!["noop".into(), "--input".into(), "{not json".into()], 2, "error: --input is not valid JSON: key must be a string at line 1 column 2".into()),
        (vec!["noop".into(), "--allow-host".into(), "ftp://example.com".into()], 2, "error: --allow-host: invalid host pattern `ftp://example.com`: scheme must be http or https".into()),
        (vec!["noop".into(), "--fuel".into(), "0".into()], 2, "error: fuel must be between 1 and 1000000000000, got 0".into()),
        (vec!["noop".into(), "--memory-mb".into(), "999999".into()], 2, "error: memory must be between 2 MiB and 1024 MiB, got 999999 MiB".into()),
        (vec!["noop".into(), "--timeout-ms".into(), "0".into()], 2, "error: timeout must be between 1 ms and 3600000 ms, got 0 ms".into()),
        (vec!["noop".into(), "--config".into(), "novalue".into()], 2, "expected KEY=VALUE, got `novalue`".into()),
        (vec!["noop".into(), "--input".into(), "@/nonexistent/input.json".into()], 2, "error: cannot read the input file /nonexistent/input.json".into()),
    ];
    for (args, expected_code, message) in cases {
        let mut all = vec!["run".to_string()];
        all.extend(args.clone());
        let all: Vec<&str> = all.iter().map(String::as_str).collect();
        let o = missionctl(&all);
        assert_eq!(code(&o), expected_code, "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(&message), "{args:?}: {}", stderr(&o));
    }
}
