//! End-to-end tests of the `missionctl` binary: the messages and exit codes a user sees.

use std::path::PathBuf;
use std::process::{Command, Output};

use mc_testkit::target_dir;
use serde_json::json;

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

#[test]
fn cron_next_prints_fire_times() {
    let o = missionctl(&[
        "cron",
        "next",
        "30 2 * * *",
        "--tz",
        "Europe/Berlin",
        "--after",
        "2026-03-27T12:00:00Z",
        "--count",
        "3",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    // 2026-03-29 has no 02:30 in Berlin: the job runs when the clock jumps to 03:00.
    assert_eq!(
        stdout(&o),
        "2026-03-28T02:30:00+01:00\n2026-03-29T03:00:00+02:00\n2026-03-30T02:30:00+02:00\n"
    );
    assert_eq!(stderr(&o), "");

    // No zone: UTC, five times.
    let o = missionctl(&["cron", "next", "0 9 * * MON", "--after", "2026-01-01T00:00:00Z"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(
        stdout(&o),
        "2026-01-05T09:00:00Z\n2026-01-12T09:00:00Z\n2026-01-19T09:00:00Z\n2026-01-26T09:00:00Z\n2026-02-02T09:00:00Z\n"
    );

    let o = missionctl(&[
        "cron",
        "next",
        "0 30 9 * * *",
        "--tz",
        "Asia/Kolkata",
        "--after",
        "2026-05-01T10:00:00+05:30",
        "--count",
        "2",
        "--json",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let doc: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(
        doc,
        serde_json::json!(["2026-05-02T09:30:00+05:30", "2026-05-03T09:30:00+05:30"])
    );

    // Without --after: from now on.
    let o = missionctl(&["cron", "next", "@hourly", "--count", "2"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(stdout(&o).lines().count(), 2, "{}", stdout(&o));
    assert!(stdout(&o).lines().all(|l| l.ends_with(":00:00Z")), "{}", stdout(&o));

    let o = missionctl(&["cron", "next", "--help"]);
    for flag in ["--tz", "--after", "--count", "--json"] {
        assert!(stdout(&o).contains(flag), "{flag} missing from cron next --help");
    }
}

#[test]
fn cron_next_bad_input_gets_one_clear_line() {
    let cases: [(&[&str], &str); 9] = [
        (
            &["61 * * * *"],
            "invalid cron expression `61 * * * *`: minute: 61 is out of range 0-59",
        ),
        (
            &["* * *"],
            "invalid cron expression `* * *`: expected 5 fields (minute hour day-of-month month day-of-week) or 6 (a second field first), found 3",
        ),
        (
            &["0 0 L * *"],
            "invalid cron expression `0 0 L * *`: day-of-month: `L` (last day of the month) is not supported (in `L`)",
        ),
        (
            &["0 9 * * *", "--tz", "Mars/Base"],
            "--tz: unknown time zone `Mars/Base` (expected an IANA name such as Europe/Berlin or UTC)",
        ),
        (
            &["0 9 * * *", "--after", "2026-12-01T09:00:00"],
            "--after: invalid time `2026-12-01T09:00:00`: expected an RFC 3339 timestamp with an offset, such as 2026-12-01T09:00:00Z or 2026-12-01T10:00:00+01:00 (failed to find offset component, which is required for parsing a timestamp)",
        ),
        (
            &["0 9 * * *", "--count", "0"],
            "--count must be between 1 and 1000, got 0",
        ),
        (
            &["0 9 * * *", "--count", "1001"],
            "--count must be between 1 and 1000, got 1001",
        ),
        (
            &["0 0 30 2 *", "--after", "2026-01-01T00:00:00Z"],
            "`0 0 30 2 *` does not fire within 9 years after 2026-01-01T00:00:00Z (does the date exist?)",
        ),
        (
            &["0 0 31 4 *", "--tz", "Europe/Berlin", "--after", "2026-01-01T00:00:00Z"],
            "`0 0 31 4 *` does not fire within 9 years after 2026-01-01T00:00:00Z (does the date exist?)",
        ),
    ];
    for (args, message) in cases {
        let mut all = vec!["cron", "next"];
        all.extend_from_slice(args);
        let o = missionctl(&all);
        assert_eq!(code(&o), 2, "{args:?}: {}", stderr(&o));
        assert_eq!(stderr(&o), format!("error: {message}\n"), "{args:?}");
        assert_eq!(stdout(&o), "", "{args:?}");
    }
}

const TENANT_FILE: &str = "tenant: acme
agents:
  - name: writer
    role: Content writer
    plugin: content-writer
automations:
  - name: weekly-post
    agent: writer
    trigger: { cron: \"0 9 * * 1\", timezone: Europe/Berlin }
    input: { brief: \"Spring sale\" }
";

#[test]
fn apply_and_get_manage_a_tenant_idempotently() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("acme.yaml");
    std::fs::write(&file, TENANT_FILE).unwrap();
    let data = dir.path().join("data");
    let (f, d) = (file.to_str().unwrap(), data.to_str().unwrap());
    let o = missionctl(&["apply", "-f", f, "--data-dir", d]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(
        stdout(&o),
        "tenant acme: created\nagent writer: created\nautomation weekly-post: created\napplied acme: 3 created, 0 updated, 0 deleted, 0 unchanged\n"
    );
    let o = missionctl(&["apply", "-f", f, "--data-dir", d]);
    assert!(
        stdout(&o).ends_with("applied acme: 0 created, 0 updated, 0 deleted, 2 unchanged\n"),
        "{}",
        stdout(&o)
    );

    let o = missionctl(&["get", "automations", "--tenant", "acme", "--data-dir", d, "--json"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let rows: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(rows[0]["name"], "weekly-post");
    let next: jiff::Timestamp = rows[0]["next_run"].as_str().unwrap().parse().unwrap();
    let berlin = next.to_zoned_datetime(jiff::tz::TimeZone::get("Europe/Berlin").unwrap());
    assert_eq!((berlin.hour(), berlin.minute()), (9, 0), "{next}");
    let o = missionctl(&["get", "automations", "--tenant", "acme", "--data-dir", d]);
    assert!(
        stdout(&o).contains("cron \"0 9 * * 1\" Europe/Berlin"),
        "{}",
        stdout(&o)
    );
    let o = missionctl(&["get", "agents", "--tenant", "acme", "--data-dir", d]);
    assert!(
        stdout(&o).contains("writer  Content writer  content-writer"),
        "{}",
        stdout(&o)
    );
    let o = missionctl(&["get", "tenants", "--data-dir", d]);
    assert_eq!(stdout(&o), "TENANT  NAME\nacme    acme\n");
}

/// The demo team as a tree (who reports to whom); a run's tree needs the run's id.
#[test]
fn the_team_and_a_run_show_as_trees() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let demo = concat!(env!("CARGO_MANIFEST_DIR"), "/../../templates/demo-tenant.yaml");
    let d = data.to_str().unwrap();
    let o = missionctl(&["apply", "-f", demo, "--data-dir", d]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = missionctl(&["get", "agents", "--tree", "--tenant", "demo", "--data-dir", d]);
    assert_eq!(
        stdout(&o),
        "director (Plans campaigns and hands out the work, offline)\n \
         ├── social (Social media manager, offline)\n \
         └── writer (Content writer, offline)\n"
    );
    let o = missionctl(&["get", "runs", "--tree", "--tenant", "demo", "--data-dir", d]);
    assert_eq!(code(&o), 2, "a run tree needs a run id");
}

#[test]
fn apply_refuses_mistakes_with_their_position_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let d = data.to_str().unwrap();
    let cases = [
        (
            TENANT_FILE.replace("plugin: content-writer", "plugin: no-such-plugin"),
            "line 5, column 13: agents[0].plugin: unknown plugin `no-such-plugin`",
        ),
        (
            TENANT_FILE.replace("0 9 * * 1", "0 9 * * 8"),
            "line 9, column 22: automations[0].trigger.cron: invalid cron expression `0 9 * * 8`",
        ),
        (
            TENANT_FILE.replace("Europe/Berlin", "Europe/Atlantis"),
            "line 9, column 45: automations[0].trigger.timezone:",
        ),
        (
            TENANT_FILE.replace("    role: Content writer\n", ""),
            "line 3, column 5: agents[0]: missing field `role`",
        ),
    ];
    for (i, (text, message)) in cases.iter().enumerate() {
        let file = dir.path().join(format!("bad{i}.yaml"));
        std::fs::write(&file, text).unwrap();
        let o = missionctl(&["apply", "-f", file.to_str().unwrap(), "--data-dir", d]);
        assert_eq!(code(&o), 2, "{message}: {}", stderr(&o));
        assert!(stderr(&o).contains(message), "{message}: {}", stderr(&o));
    }
    let o = missionctl(&["get", "tenants", "--data-dir", d]);
    assert_eq!(stdout(&o), "TENANT  NAME\n", "nothing was written");
    let o = missionctl(&["get", "agents", "--tenant", "ghost", "--data-dir", d]);
    assert_eq!((code(&o), stderr(&o).trim()), (2, "error: no tenant `ghost`"));
}

#[test]
fn run_now_enqueues_and_serve_runs_it() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("acme.yaml");
    std::fs::write(&file, TENANT_FILE).unwrap();
    let data = dir.path().join("data");
    let d = data.to_str().unwrap();
    assert_eq!(
        code(&missionctl(&["apply", "-f", file.to_str().unwrap(), "--data-dir", d])),
        0
    );
    let o = missionctl(&["run-now", "weekly-post", "--tenant", "acme", "--data-dir", d]);
    assert_eq!(
        (code(&o), stdout(&o).as_str()),
        (0, "enqueued run 1 of weekly-post\n"),
        "{}",
        stderr(&o)
    );
    let o = missionctl(&["webhook-secret", "weekly-post", "--tenant", "acme", "--data-dir", d]);
    assert_eq!(
        (code(&o), stderr(&o).trim()),
        (2, "error: automation `weekly-post` is not triggered by a webhook")
    );
    let o = missionctl(&["run-now", "nothing", "--tenant", "acme", "--data-dir", d]);
    assert_eq!((code(&o), stderr(&o).trim()), (2, "error: no automation `nothing`"));

    // Escalations need a URL that can be vetted and a `whsec_` key, both or neither.
    let serve_with = |extra: &[&str]| {
        let mut args = vec!["serve", "--data-dir", d, "--listen", "127.0.0.1:0"];
        args.extend_from_slice(extra);
        missionctl(&args)
    };
    let key = ["--escalation-secret", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"];
    let o = serve_with(&[&["--escalation-url", "ftp://ops.example.com/x"][..], &key[..]].concat());
    assert_eq!(
        (code(&o), stderr(&o).trim()),
        (
            2,
            "error: --escalation-url: `ftp://ops.example.com/x`: the scheme must be https or http"
        )
    );
    let o = serve_with(&[
        "--escalation-url",
        "https://ops.example.com/x",
        "--escalation-secret",
        "not-base64!",
    ]);
    assert_eq!(
        (code(&o), stderr(&o).trim()),
        (
            2,
            "error: --escalation-secret: the signing secret is not base64 (expected whsec_<base64>)"
        )
    );
    let o = serve_with(&["--escalation-url", "https://ops.example.com/x"]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(stderr(&o).contains("--escalation-secret"), "{}", stderr(&o));

    // A node runs it, logging JSON lines that carry the run, and stops cleanly on SIGTERM.
    let serve = Command::new(env!("CARGO_BIN_EXE_missionctl"))
        .args([
            "serve",
            "--data-dir",
            d,
            "--listen",
            "127.0.0.1:0",
            "--log",
            "mc_engine=info",
            "--log-format",
            "json",
        ])
        .env("MISSIONCTL_PLUGIN_DIR", plugin_dir())
        .env("MISSIONCTL_CACHE_DIR", target_dir().join("test-component-cache"))
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let o = missionctl(&["get", "runs", "--tenant", "acme", "--data-dir", d, "--json"]);
        let runs: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
        if runs[0]["state"] == "succeeded" {
            let o = missionctl(&["get", "runs", "1", "--tenant", "acme", "--data-dir", d]);
            let run: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
            assert!(
                run["output"]["title"].as_str().unwrap().contains("Offline draft"),
                "{run}"
            );
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the run did not finish: {runs}");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let pid = serve.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let out = serve.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("stopped"));
    let finished: Vec<serde_json::Value> = err
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .filter(|v: &serde_json::Value| v["fields"]["message"] == "run succeeded")
        .collect();
    assert_eq!(finished.len(), 1, "{err}");
    let span = &finished[0]["span"];
    assert_eq!(
        (&span["tenant"], &span["automation"], &span["run"], &span["attempt"]),
        (&json!("acme"), &json!("weekly-post"), &json!(1), &json!(1)),
        "{err}"
    );
    assert_eq!(finished[0]["level"], "INFO");
}

/// Two nodes on one PostgreSQL database share the queue; killing one (SIGKILL, mid-run) loses no
/// job and runs none twice: its jobs return when their leases expire and finish on the other.
#[test]
fn several_nodes_share_the_queue_and_a_killed_node_loses_nothing() {
    const JOBS: usize = 40;
    let tokio = tokio::runtime::Runtime::new().unwrap();
    let db = tokio.block_on(mc_testkit::TestDb::postgres());
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("acme.yaml");
    std::fs::write(
        &file,
        "tenant: acme\nagents:\n  - name: sleeper\n    role: Sleeps\n    plugin: hostile\n",
    )
    .unwrap();
    let url = db.url.clone();
    let o = missionctl(&["apply", "-f", file.to_str().unwrap(), "--database-url", &url]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let job = mc_store::NewJob {
        tenant: "acme".into(),
        automation: None,
        agent: "sleeper".into(),
        plugin: "hostile".into(),
        input: r#"{"mode":"sleep","ms":1500}"#.into(),
        trigger: "manual".into(),
        priority: 0,
        max_attempts: 3,
        run_at: None,
        idempotency_key: None,
    };
    tokio.block_on(db.store.enqueue(&vec![job; JOBS])).unwrap();
    let node = |name: &str| {
        Command::new(env!("CARGO_BIN_EXE_missionctl"))
            .args([
                "serve",
                "--database-url",
                &url,
                "--workers",
                "16",
                "--lease-secs",
                "2",
                "--node-id",
                name,
                "--listen",
                "127.0.0.1:0",
            ])
            .env("MISSIONCTL_PLUGIN_DIR", plugin_dir())
            .env("MISSIONCTL_CACHE_DIR", target_dir().join("test-component-cache"))
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap()
    };
    let mut a = node("node-a");
    let b = node("node-b");
    let jobs = || tokio.block_on(db.store.jobs("acme", JOBS as i64)).unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    // Wait until both nodes hold running work, then kill node A without warning.
    loop {
        let all = jobs();
        let held_by = |n: &str| {
            all.iter()
                .filter(|j| j.state == "running" && j.claimed_by.as_deref() == Some(n))
                .count()
        };
        if held_by("node-a") > 0 && held_by("node-b") > 0 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "both nodes should be working");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(a.try_wait().unwrap().is_none(), "node A is alive until killed");
    a.kill().unwrap();
    a.wait().unwrap();
    loop {
        let all = jobs();
        if all.iter().all(|j| j.state == "succeeded") {
            assert_eq!(all.len(), JOBS);
            assert!(all.iter().all(|j| (1..=2).contains(&j.attempt)), "{all:?}");
            assert!(
                all.iter().any(|j| j.attempt == 2),
                "node A's jobs were recovered and run again"
            );
            assert!(
                all.iter()
                    .all(|j| j.claimed_by.as_deref() == Some("node-b") || j.attempt == 1)
            );
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "jobs did not all finish: {:?}",
            all.iter().map(|j| &j.state).collect::<Vec<_>>()
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(tokio.block_on(db.store.queue_counts("acme")).unwrap(), (0, 0));
    assert_eq!(
        tokio.block_on(db.store.queue_mismatches()).unwrap(),
        [],
        "the queue agrees with the runs"
    );
    // What the survivor recorded: the dead node's runs, requeued, as one resolved incident.
    let requeued: Vec<_> = tokio
        .block_on(db.store.incidents(50))
        .unwrap()
        .into_iter()
        .filter(|i| i.kind == "runs_requeued" && i.subject == "node-a")
        .collect();
    assert!(!requeued.is_empty(), "the recovery was recorded");
    assert!(
        requeued.iter().all(|i| i.state == "resolved"
            && i.summary.starts_with("node `node-a` stopped renewing the leases of ")
            && i.action.as_deref().is_some_and(|a| a.starts_with("requeued "))),
        "{requeued:?}"
    );
    Command::new("kill")
        .args(["-TERM", &b.id().to_string()])
        .status()
        .unwrap();
    assert!(b.wait_with_output().unwrap().status.success());
    tokio.block_on(db.finish());
}

/// `serve` issues the first operator key once; `apply`, `get`, `run-now` and `key` then work
/// against the running server with `--server` and `--key`, and refuse what the key may not do.
#[test]
fn management_commands_work_against_a_running_server() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("acme.yaml");
    std::fs::write(&file, TENANT_FILE).unwrap();
    let data = dir.path().join("data");
    let mut serve = Command::new(env!("CARGO_BIN_EXE_missionctl"))
        .args(["serve", "--data-dir", data.to_str().unwrap(), "--listen", "127.0.0.1:0"])
        .env("MISSIONCTL_PLUGIN_DIR", plugin_dir())
        .env("MISSIONCTL_CACHE_DIR", target_dir().join("test-component-cache"))
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(serve.stderr.take().unwrap()).lines();
    let mut key = String::new();
    let mut server = String::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        if line.starts_with("mc_") {
            key = line.trim().to_string();
        }
        if let Some(at) = line.find("listening on ") {
            server = line[at + "listening on ".len()..]
                .split(';')
                .next()
                .unwrap()
                .to_string();
            break;
        }
    }
    assert!(
        key.starts_with("mc_") && server.starts_with("http://127.0.0.1:"),
        "{key} {server}"
    );
    let remote = |args: &[&str], key: &str| {
        let mut all: Vec<&str> = args.to_vec();
        all.extend(["--server", &server, "--key", key]);
        missionctl(&all)
    };
    let o = remote(&["apply", "-f", file.to_str().unwrap()], &key);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(
        stdout(&o).ends_with("applied acme: 3 created, 0 updated, 0 deleted, 0 unchanged\n"),
        "{}",
        stdout(&o)
    );
    let o = remote(
        &[
            "key", "create", "--role", "viewer", "--tenant", "acme", "--label", "ops",
        ],
        &key,
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let viewer = stdout(&o).trim().to_string();
    assert!(stderr(&o).contains("(viewer of tenant acme): store it now, it is not shown again"));
    let o = remote(&["get", "agents", "--tenant", "acme"], &viewer);
    assert!(
        stdout(&o).contains("writer  Content writer  content-writer"),
        "{}",
        stdout(&o)
    );
    let o = remote(&["run-now", "weekly-post", "--tenant", "acme"], &viewer);
    assert_eq!(
        (code(&o), stderr(&o).trim()),
        (2, "error: a viewer key can read this tenant but not change it")
    );
    let o = remote(&["get", "tenants"], "mc_000000000000_nope");
    assert_eq!((code(&o), stderr(&o).trim()), (2, "error: unknown or revoked API key"));
    let o = missionctl(&["get", "tenants", "--server", &server]);
    assert_eq!(
        (code(&o), stderr(&o).trim()),
        (2, "error: --server needs --key (or MISSIONCTL_KEY)")
    );
    let o = remote(&["key", "list"], &key);
    assert!(stdout(&o).contains("first operator key"), "{}", stdout(&o));
    // A restart issues no second operator key.
    assert!(
        Command::new("kill")
            .args(["-TERM", &serve.id().to_string()])
            .status()
            .unwrap()
            .success()
    );
    assert!(serve.wait().unwrap().success());
    let again = Command::new(env!("CARGO_BIN_EXE_missionctl"))
        .args(["serve", "--data-dir", data.to_str().unwrap(), "--listen", "127.0.0.1:0"])
        .env("MISSIONCTL_PLUGIN_DIR", plugin_dir())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_secs(2));
    assert!(
        Command::new("kill")
            .args(["-TERM", &again.id().to_string()])
            .status()
            .unwrap()
            .success()
    );
    let out = again.wait_with_output().unwrap();
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("first start"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn prices_plans_and_usage_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let d = data.to_str().unwrap();
    let file = dir.path().join("acme.yaml");
    std::fs::write(&file, TENANT_FILE).unwrap();
    let o = missionctl(&["apply", "-f", file.to_str().unwrap(), "--data-dir", d]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));

    let o = missionctl(&["prices", "show", "--data-dir", d]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(stdout(&o).starts_with("price book v1 (published "), "{}", stdout(&o));
    let mini: Vec<String> = stdout(&o)
        .lines()
        .find(|l| l.starts_with("gpt-4o-mini "))
        .map(|l| l.split_whitespace().map(str::to_string).collect())
        .unwrap_or_default();
    assert_eq!(
        mini,
        ["gpt-4o-mini", "openai", "0.15", "0.60", "0.075", "0.15"],
        "{}",
        stdout(&o)
    );

    let book = dir.path().join("prices.yaml");
    std::fs::write(&book, "fuel_per_billion: 0.02\nmodels:\n  offline: { provider: offline, input: 0, output: 0 }\n  local-llama: { provider: openai, input: 0, output: 0 }\n").unwrap();
    let b = book.to_str().unwrap();
    let o = missionctl(&["prices", "apply", "-f", b, "--data-dir", d]);
    assert_eq!(
        (code(&o), stdout(&o).as_str()),
        (0, "price book v2 published (2 models)\n"),
        "{}",
        stderr(&o)
    );
    let o = missionctl(&["prices", "apply", "-f", b, "--data-dir", d]);
    assert_eq!(stdout(&o), "unchanged: price book v2 is already this one\n");
    std::fs::write(
        &book,
        "fuel_per_billion: 0.02\nmodels:\n  m: { provider: openai, input: 1, outptu: 2 }\n",
    )
    .unwrap();
    let o = missionctl(&["prices", "apply", "-f", b, "--data-dir", d]);
    assert_eq!(code(&o), 2);
    assert!(
        stderr(&o).starts_with("error: price book: models.m: unknown field `outptu`"),
        "{}",
        stderr(&o)
    );

    let o = missionctl(&["plan", "set", "acme", "growth", "--data-dir", d]);
    assert_eq!(
        (code(&o), stdout(&o).as_str()),
        (
            0,
            "acme: plan growth (was starter), $3500.00 a month, 8 agents, 30 automations\n"
        ),
        "{}",
        stderr(&o)
    );
    let o = missionctl(&["plan", "set", "acme", "platinum", "--data-dir", d]);
    assert_eq!(
        (code(&o), stderr(&o).as_str()),
        (2, "error: plan must be starter, growth or scale, not `platinum`\n")
    );

    let o = missionctl(&[
        "usage",
        "--tenant",
        "acme",
        "--month",
        "2026-11",
        "--by",
        "day",
        "--format",
        "csv",
        "--data-dir",
        d,
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(
        stdout(&o),
        "day,ai_calls,input_tokens,output_tokens,cache_read_tokens,cache_write_tokens,estimated_calls,fuel,ai_cost_micros,fuel_cost_micros,cost_micros\n\"total\",0,0,0,0,0,0,0,0,0,0\n"
    );
    let o = missionctl(&["usage", "--tenant", "acme", "--month", "November", "--data-dir", d]);
    assert_eq!(
        (code(&o), stderr(&o).as_str()),
        (
            2,
            "error: `November` is not a month: write it as YYYY-MM, like 2026-11\n"
        )
    );
    let o = missionctl(&["usage", "--tenant", "globex", "--data-dir", d]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    let o = missionctl(&["report", "--month", "2026-11", "--data-dir", d]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let out = stdout(&o);
    let acme: Vec<&str> = out
        .lines()
        .find(|l| l.starts_with("acme "))
        .unwrap_or("")
        .split_whitespace()
        .collect();
    assert_eq!(
        acme,
        ["acme", "growth", "3500.00", "0.00", "0.00", "3500.00"],
        "{}",
        stdout(&o)
    );
}

/// The template gallery from the command line: list, a refused install (plan limit, bad
/// parameter) that changes nothing, an install, and a reinstall that upgrades in place.
#[test]
fn templates_install_a_team_in_one_step() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let d = data.to_str().unwrap();
    let file = dir.path().join("shop.yaml");
    std::fs::write(&file, "tenant: shop\nagents: []\n").unwrap();
    let o = missionctl(&["apply", "-f", file.to_str().unwrap(), "--data-dir", d]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = missionctl(&["template", "list", "--data-dir", d]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(stdout(&o).contains("marketing-agency"), "{}", stdout(&o));

    let install = |extra: &[&str]| {
        let mut args = vec![
            "template",
            "install",
            "marketing-agency",
            "--tenant",
            "shop",
            "--data-dir",
            d,
        ];
        args.extend_from_slice(extra);
        missionctl(&args)
    };
    let o = install(&["--set", "company=Shop", "--set", "topic=Garden tools"]);
    assert_eq!(code(&o), 2);
    assert_eq!(
        stderr(&o),
        "error: tenant `shop` is on the Starter plan, which allows 3 agents; this configuration has 5; the Growth plan allows 8\n"
    );
    let o = missionctl(&["plan", "set", "shop", "growth", "--data-dir", d]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = install(&[
        "--set",
        "company=Shop",
        "--set",
        "topic=Garden tools",
        "--set",
        "timezone=Mars Base",
    ]);
    assert_eq!(
        stderr(&o),
        "error: parameter `timezone` must match the pattern `[A-Za-z_]+(/[A-Za-z0-9_+\\-]+)*` (Your time zone (IANA, like Europe/Berlin)), and `Mars Base` does not\n"
    );
    let o = missionctl(&["get", "agents", "--tenant", "shop", "--data-dir", d, "--json"]);
    assert_eq!(stdout(&o).trim(), "[]", "nothing half-installed");

    let o = install(&["--set", "company=Shop", "--set", "topic=Garden tools"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(
        stdout(&o).contains("agent director: created")
            && stdout(&o).ends_with("installed marketing-agency into shop\n")
    );
    let o = install(&["--set", "company=Shop", "--set", "topic=Garden tools"]);
    assert_eq!(
        stdout(&o),
        "installed marketing-agency into shop\n",
        "a reinstall with the same values changes nothing"
    );
    let o = install(&["--set", "company=Shop & Co", "--set", "topic=Garden tools"]);
    assert!(stdout(&o).contains("agent content-writer: updated"), "{}", stdout(&o));
    let o = missionctl(&["get", "agents", "--tree", "--tenant", "shop", "--data-dir", d]);
    let tree = stdout(&o);
    assert!(
        tree.starts_with("director (") && tree.matches("── ").count() == 4,
        "{tree}"
    );
}

/// `serve --demo`: a newcomer's first start has the marketing team installed and at work — the
/// director's campaign delegates to all four specialists, and all of them finish.
#[test]
fn serve_demo_starts_a_working_team() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let d = data.to_str().unwrap();
    let mut serve = Command::new(env!("CARGO_BIN_EXE_missionctl"))
        .args(["serve", "--demo", "--data-dir", d, "--listen", "127.0.0.1:0"])
        .env("MISSIONCTL_PLUGIN_DIR", plugin_dir())
        .env("MISSIONCTL_CACHE_DIR", target_dir().join("test-component-cache"))
        .env(
            "MISSIONCTL_TEMPLATE_DIR",
            concat!(env!("CARGO_MANIFEST_DIR"), "/../../templates"),
        )
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the node is up before reading its database from another process.
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(serve.stderr.take().unwrap()));
    let mut log = String::new();
    loop {
        let line = lines
            .next()
            .and_then(Result::ok)
            .unwrap_or_else(|| panic!("serve --demo stopped: {log}"));
        log.push_str(&line);
        log.push('\n');
        if line.contains("listening on") {
            break;
        }
    }
    // Keep reading what it says, so it never blocks on a full pipe.
    let rest = std::thread::spawn(move || lines.map_while(Result::ok).collect::<Vec<_>>().join("\n"));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let tree = loop {
        let o = missionctl(&[
            "get",
            "runs",
            "1",
            "--tree",
            "--json",
            "--tenant",
            "demo",
            "--data-dir",
            d,
        ]);
        let tree: serde_json::Value =
            serde_json::from_str(&stdout(&o)).unwrap_or_else(|_| serde_json::json!(stderr(&o)));
        let children = tree["children"].as_array().cloned().unwrap_or_default();
        if tree["state"] == "succeeded" && children.len() == 4 && children.iter().all(|c| c["state"] == "succeeded") {
            break tree;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the demo team did not finish its campaign: {tree}\n{log}"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    assert_eq!(tree["agent"], "director");
    let pid = serve.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let status = serve.wait().unwrap();
    let rest = rest.join().unwrap();
    assert!(status.success(), "{log}{rest}");
    assert!(log.contains("demo tenant `demo` ready"), "{log}");
}

/// Chaos, as real processes: a node whose plugin starts trapping after a new version is
/// deployed. The monitor quarantines that version after three trapped runs, and the node refuses
/// its runs at once (kept as dead runs) instead of trapping again; the incident reaches the
/// operator's webhook, which is down at first (503 twice: retried, delivered once), and the
/// operator's email (aiosmtpd). A fixed version works and closes the incident; the operator lifts
/// the quarantine and retries the dead runs: every run ends succeeded, and each attempt that ran
/// has exactly one fuel row. The node exports its traces by OTLP meanwhile.
#[test]
fn a_plugin_that_starts_trapping_after_a_new_version_is_quarantined_and_escalated() {
    use std::time::{Duration, Instant};
    const KEY: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let tokio = tokio::runtime::Runtime::new().unwrap();
    let hook = tokio.block_on(mc_testkit::WebhookSink::start([503, 503]));
    let collector = tokio.block_on(mc_testkit::WebhookSink::start([]));
    let mail = tokio.block_on(mc_testkit::SmtpSink::start(0));
    let dir = tempfile::tempdir().unwrap();
    let plugins = dir.path().join("plugins");
    std::fs::create_dir(&plugins).unwrap();
    let deploy = |from: &str| {
        // A new file, renamed into place: what a deploy does, never a half-written plugin.
        let next = plugins.join("next.tmp");
        std::fs::copy(plugin_dir().join(from), &next).unwrap();
        std::fs::rename(&next, plugins.join("worker.wasm")).unwrap();
    };
    deploy("noop.wasm");
    let file = dir.path().join("acme.yaml");
    std::fs::write(
        &file,
        "tenant: acme\nagents:\n  - { name: bot, role: Works, plugin: worker }\nautomations:\n  - { name: job, agent: bot, trigger: { manual: true }, input: { mode: trap } }\n",
    )
    .unwrap();
    let data = dir.path().join("data");
    let d = data.to_str().unwrap();
    let with_plugins = |args: &[&str]| {
        let o = Command::new(env!("CARGO_BIN_EXE_missionctl"))
            .args(args)
            .env("MISSIONCTL_PLUGIN_DIR", &plugins)
            .output()
            .unwrap();
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
        stdout(&o)
    };
    with_plugins(&["apply", "-f", file.to_str().unwrap(), "--data-dir", d]);
    let origin = hook.origin().to_string();
    let serve = Command::new(env!("CARGO_BIN_EXE_missionctl"))
        .args([
            "serve",
            "--data-dir",
            d,
            "--listen",
            "127.0.0.1:0",
            "--escalation-url",
            &format!("{origin}/ops"),
            "--escalation-secret",
            KEY,
            "--allow-test-host",
            &origin,
            "--escalation-email",
            "oncall@platform.example",
            "--smtp-url",
            &mail.url(),
            "--smtp-from",
            "alerts@mission-control.example",
            "--otlp-endpoint",
            collector.origin(),
        ])
        .env("MISSIONCTL_PLUGIN_DIR", &plugins)
        .env("MISSIONCTL_CACHE_DIR", target_dir().join("test-component-cache"))
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let store = tokio
        .block_on(mc_store::Store::open_sqlite(&data.join("missionctl.db")))
        .unwrap();
    let runs = || tokio.block_on(store.jobs("acme", 100)).unwrap();
    let wait = |what: &str, done: &dyn Fn() -> bool| {
        let deadline = Instant::now() + Duration::from_secs(90);
        while !done() {
            assert!(Instant::now() < deadline, "{what}: {:?}", runs());
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    let run_now = || with_plugins(&["run-now", "job", "--tenant", "acme", "--data-dir", d]);
    let finished = |n: usize| {
        runs()
            .iter()
            .filter(|r| r.state == "succeeded" || r.state == "dead")
            .count()
            >= n
    };

    run_now();
    wait("version 1 runs", &|| finished(1));
    assert_eq!(runs()[0].state, "succeeded");
    deploy("hostile.wasm");
    // The node looks at the file at most once a second.
    std::thread::sleep(mc_engine::RECHECK_EVERY + Duration::from_millis(200));
    for _ in 0..3 {
        run_now();
    }
    wait("version 2 traps three times", &|| finished(4));
    assert!(
        runs()[..3].iter().all(|r| r.error_kind.as_deref() == Some("trap")),
        "{:?}",
        runs()
    );
    wait("the monitor quarantines version 2", &|| {
        !tokio.block_on(store.quarantined()).unwrap().is_empty()
    });
    std::thread::sleep(mc_engine::QUARANTINE_REFRESH + Duration::from_millis(200));
    run_now();
    wait("the refused run", &|| finished(5));
    let refused = &runs()[0];
    assert_eq!(refused.error_kind.as_deref(), Some("quarantined"), "{refused:?}");
    assert!(
        refused
            .error
            .as_deref()
            .unwrap()
            .starts_with("plugin `worker` version ")
            && refused
                .error
                .as_deref()
                .unwrap()
                .contains("is quarantined: its last 3 runs trapped (latest: "),
        "{refused:?}"
    );
    assert_eq!(
        with_plugins(&["plugin", "quarantined", "--data-dir", d])
            .matches("worker@")
            .count(),
        1
    );

    // Escalated: the webhook answered 503 twice, then took it; one email.
    wait("the escalation is delivered", &|| hook.count() >= 3);
    let posts = hook.received();
    let ids: std::collections::BTreeSet<&str> = posts.iter().map(|r| r.header("webhook-id").unwrap()).collect();
    assert_eq!(ids.len(), 1, "one message, retried");
    let body: serde_json::Value = serde_json::from_str(&posts[2].body).unwrap();
    assert_eq!(
        (&body["type"], &body["data"]["kind"]),
        (&json!("incident.opened"), &json!("plugin_quarantined"))
    );
    let mails = tokio.block_on(mail.wait_for(1, Duration::from_secs(30)));
    assert_eq!(mails.len(), 1);
    assert_eq!(mails[0].to, ["oncall@platform.example"]);
    assert!(
        mails[0].subject.contains("plugin `worker` version"),
        "{}",
        mails[0].subject
    );

    // A fixed version: runs work again and the incident closes (posted and mailed once more).
    deploy("noop.wasm");
    std::thread::sleep(mc_engine::RECHECK_EVERY + Duration::from_millis(200));
    run_now();
    wait("version 3 runs", &|| finished(6));
    assert_eq!(runs()[0].state, "succeeded");
    wait("the incident is resolved", &|| {
        tokio
            .block_on(store.open_incidents())
            .unwrap()
            .iter()
            .all(|i| i.kind != "plugin_quarantined")
    });
    wait("the resolution is posted", &|| {
        hook.received().iter().any(|r| r.body.contains("incident.resolved"))
    });
    assert_eq!(tokio.block_on(mail.wait_for(2, Duration::from_secs(30))).len(), 2);
    let out = with_plugins(&["plugin", "release", "worker", "--data-dir", d]);
    assert_eq!(
        out,
        "worker: lifted the quarantine of 1 version(s); retry the runs it refused\n"
    );
    for r in runs().iter().filter(|r| r.state == "dead") {
        assert!(tokio.block_on(store.retry_dead("acme", r.id)).unwrap());
    }
    wait("the retried runs", &|| runs().iter().all(|r| r.state == "succeeded"));
    // Attempts: 6 runs, 4 of them retried once; the refused attempt burnt no fuel, every other
    // attempt has its one fuel row: 9, none twice.
    let fuel_rows: usize = runs()
        .iter()
        .map(|r| {
            tokio
                .block_on(store.tenant("acme").ledger_of_run(&r.id.to_string()))
                .unwrap()
                .iter()
                .filter(|l| l.kind == "fuel")
                .count()
        })
        .sum();
    assert_eq!(fuel_rows, 9);

    stop(serve);
    // The traces: run spans carrying the tenant, exported as OTLP JSON.
    let exported: Vec<serde_json::Value> = collector
        .received()
        .iter()
        .map(|r| serde_json::from_str(&r.body).unwrap())
        .collect();
    let spans: Vec<&serde_json::Value> = exported
        .iter()
        .flat_map(|e| e["resourceSpans"].as_array().unwrap())
        .flat_map(|r| r["scopeSpans"].as_array().unwrap())
        .flat_map(|s| s["spans"].as_array().unwrap())
        .collect();
    let run_spans: Vec<_> = spans.iter().filter(|s| s["name"] == "run").collect();
    assert!(run_spans.len() >= 10, "a span per attempt: {}", run_spans.len());
    assert!(
        run_spans[0]["attributes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["key"] == "tenant" && a["value"]["stringValue"] == "acme"),
        "{}",
        run_spans[0]
    );
    assert!(
        collector
            .received()
            .iter()
            .all(|r| r.header("content-type") == Some("application/json"))
    );
}

/// `missionctl serve` on a free port, on the database that `store` names (`--data-dir D` or
/// `--database-url U`), with the built plugins and the shared component cache, escalating to
/// `{origin}/ops` (a test receiver, allowed as a test host); the caller adds flags and spawns it.
fn serve_escalating_to(origin: &str, store: [&str; 2]) -> Command {
    let mut serve = Command::new(env!("CARGO_BIN_EXE_missionctl"));
    serve
        .args(["serve", store[0], store[1], "--listen", "127.0.0.1:0"])
        .args([
            "--escalation-url",
            &format!("{origin}/ops"),
            "--allow-test-host",
            origin,
        ])
        .args(["--escalation-secret", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"])
        .env("MISSIONCTL_PLUGIN_DIR", plugin_dir())
        .env("MISSIONCTL_CACHE_DIR", target_dir().join("test-component-cache"))
        .stderr(std::process::Stdio::piped());
    serve
}

/// Stops a `serve` started with its stderr piped as SIGTERM does, and checks it ended cleanly.
fn stop(serve: std::process::Child) {
    let pid = serve.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let out = serve.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

/// Unmounts the test's small file system however the test ends.
struct Mounted(PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Chaos, as real processes: the data directory's disk nearly full (a 1 GiB tmpfs filled with
/// `fallocate` to under 512 MiB free). The monitor opens a `disk_low` incident and escalates it;
/// runs go on; once space is freed the incident resolves. Needs root to mount (CI runs as root).
#[test]
fn a_nearly_full_data_disk_is_an_incident_until_space_is_freed() {
    use std::time::{Duration, Instant};
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=1g", "tmpfs"])
        .arg(&data)
        .status()
        .unwrap();
    assert!(mounted.success(), "mounting a tmpfs needs root (CI runs as root)");
    let _guard = Mounted(data.clone());
    let d = data.to_str().unwrap();
    let file = dir.path().join("acme.yaml");
    std::fs::write(&file, TENANT_FILE).unwrap();
    assert_eq!(
        code(&missionctl(&["apply", "-f", file.to_str().unwrap(), "--data-dir", d])),
        0
    );
    let tokio = tokio::runtime::Runtime::new().unwrap();
    let hook = tokio.block_on(mc_testkit::WebhookSink::start([]));
    let origin = hook.origin().to_string();
    let serve = serve_escalating_to(&origin, ["--data-dir", d]).spawn().unwrap();
    let store = tokio
        .block_on(mc_store::Store::open_sqlite(&data.join("missionctl.db")))
        .unwrap();
    let disk_low = || {
        tokio
            .block_on(store.incidents(50))
            .unwrap()
            .into_iter()
            .find(|i| i.kind == "disk_low")
    };
    let wait = |what: &str, done: &dyn Fn() -> bool| {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !done() {
            assert!(Instant::now() < deadline, "{what}");
            std::thread::sleep(Duration::from_millis(200));
        }
    };
    // A cycle with room to spare opens nothing.
    wait("a first health snapshot", &|| {
        tokio.block_on(store.snapshot_count()).unwrap() > 0
    });
    assert!(disk_low().is_none());
    let filler = data.join("filler");
    let filled = Command::new("fallocate")
        .args(["-l", "800M"])
        .arg(&filler)
        .status()
        .unwrap();
    assert!(filled.success());
    wait("the monitor notices", &|| disk_low().is_some_and(|i| i.state == "open"));
    let incident = disk_low().unwrap();
    assert_eq!(incident.severity, "critical");
    assert!(
        incident.summary.starts_with(&format!("the data directory {d} has ")),
        "{}",
        incident.summary
    );
    assert!(
        incident.summary.ends_with(" MiB free of 1024 MiB"),
        "{}",
        incident.summary
    );
    wait("it is escalated", &|| {
        hook.received().iter().any(|r| r.body.contains("disk_low"))
    });
    // Work goes on while there is room.
    let o = missionctl(&["run-now", "weekly-post", "--tenant", "acme", "--data-dir", d]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    wait("the run", &|| {
        tokio
            .block_on(store.jobs("acme", 10))
            .unwrap()
            .first()
            .is_some_and(|j| j.state == "succeeded")
    });
    std::fs::remove_file(&filler).unwrap();
    wait("the incident resolves", &|| {
        disk_low().is_some_and(|i| i.state == "resolved")
    });
    wait("the resolution is posted", &|| {
        hook.received().iter().any(|r| r.body.contains("incident.resolved"))
    });
    stop(serve);
}

/// Chaos, as real processes: the primary AI provider (a fake Anthropic) answers every call with
/// 529 for a minute, then recovers, while runs keep coming. Its breaker opens within 5 failed
/// attempts and stays open through the minute (one `provider_down` incident, escalated once, not
/// reopened by each failed probe); the agent's calls go to its fallback model (a fake
/// OpenAI-compatible server; one `model_fallback` incident); when a probe succeeds both incidents
/// resolve and calls go back to the primary. Every run succeeds with exactly one AI ledger row,
/// and the ledger's tokens are exactly what the two providers reported, call by call.
#[test]
fn an_ai_provider_overloaded_for_a_minute_is_worked_around_and_nothing_is_billed_twice() {
    use mc_testkit::fake_ai::{DEFAULT_KEY, FakeProvider, Flavor, Reply, ReportedUsage};
    use std::time::{Duration, Instant};
    const OUTAGE: Duration = Duration::from_secs(60);
    // A run every so often: enough to show the breaker keeps nearly all of them off the
    // provider that is down, few enough for the test to stay light.
    const EVERY: Duration = Duration::from_millis(1500);
    let tokio = tokio::runtime::Runtime::new().unwrap();
    let anthropic = tokio.block_on(FakeProvider::start(Flavor::Anthropic));
    let openai = tokio.block_on(FakeProvider::start(Flavor::OpenAi));
    let hook = tokio.block_on(mc_testkit::WebhookSink::start([]));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("acme.yaml");
    std::fs::write(
        &file,
        "tenant: acme\nagents:\n  - name: writer\n    role: Content writer\n    plugin: content-writer\n    model: claude-haiku-4-5\n    fallbacks: [gpt-4o-mini]\nautomations:\n  - { name: post, agent: writer, trigger: { manual: true }, input: { brief: Spring sale } }\n",
    )
    .unwrap();
    let data = dir.path().join("data");
    let d = data.to_str().unwrap();
    let o = missionctl(&["apply", "-f", file.to_str().unwrap(), "--data-dir", d]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let origin = hook.origin().to_string();
    anthropic.outage(OUTAGE, Reply::overloaded());
    let outage_ends = Instant::now() + OUTAGE;
    let serve = serve_escalating_to(&origin, ["--data-dir", d])
        .args([
            "--anthropic-base-url",
            &anthropic.base_url(),
            "--anthropic-api-key",
            DEFAULT_KEY,
        ])
        .args(["--openai-base-url", &openai.base_url(), "--openai-api-key", DEFAULT_KEY])
        .spawn()
        .unwrap();
    let store = tokio
        .block_on(mc_store::Store::open_sqlite(&data.join("missionctl.db")))
        .unwrap();
    let runs = || tokio.block_on(store.jobs("acme", 1000)).unwrap();
    let incidents = |kind: &str| {
        tokio
            .block_on(store.incidents(100))
            .unwrap()
            .into_iter()
            .filter(|i| i.kind == kind)
            .collect::<Vec<_>>()
    };
    let wait = |what: &str, limit: Duration, done: &dyn Fn() -> bool| {
        let deadline = Instant::now() + limit;
        while !done() {
            assert!(Instant::now() < deadline, "{what}: {:?}", runs());
            std::thread::sleep(Duration::from_millis(200));
        }
    };
    let run_now = || {
        let o = missionctl(&["run-now", "post", "--tenant", "acme", "--data-dir", d]);
        assert_eq!(code(&o), 0, "{}", stderr(&o));
    };

    // Runs keep coming through the outage and until the primary has answered again.
    let mut submitted = 0;
    let mut seen_down = false;
    let mut seen_fallback = false;
    let stop_by = outage_ends + Duration::from_secs(90);
    while Instant::now() < outage_ends || anthropic.usage_log().is_empty() {
        assert!(
            Instant::now() < stop_by,
            "the primary never answered again: {:?}",
            runs()
        );
        run_now();
        submitted += 1;
        std::thread::sleep(EVERY);
        seen_down |= incidents("provider_down").iter().any(|i| i.state == "open");
        seen_fallback |= incidents("model_fallback").iter().any(|i| i.state == "open");
    }
    assert!(seen_down && seen_fallback, "the monitor saw the outage while it lasted");
    wait("every run ends", Duration::from_secs(60), &|| {
        let all = runs();
        all.len() == submitted && all.iter().all(|r| r.state == "succeeded" || r.state == "dead")
    });
    let all = runs();
    assert!(all.iter().all(|r| r.state == "succeeded"), "{all:?}");

    // One incident per outage, each resolved once the probe succeeded.
    wait("the incidents resolve", Duration::from_secs(30), &|| {
        incidents("provider_down").iter().all(|i| i.state == "resolved")
            && incidents("model_fallback").iter().all(|i| i.state == "resolved")
    });
    let down = incidents("provider_down");
    assert_eq!(down.len(), 1, "not reopened by each failed probe: {down:?}");
    assert_eq!(down[0].subject, "anthropic");
    assert_eq!(
        down[0].summary,
        "AI provider `anthropic` is failing: its circuit breaker is open"
    );
    let fallback = incidents("model_fallback");
    assert_eq!(fallback.len(), 1, "{fallback:?}");
    assert_eq!(
        (fallback[0].tenant.as_str(), fallback[0].summary.as_str()),
        (
            "acme",
            "agent `writer` runs on its fallback model `gpt-4o-mini` while `anthropic` (its model `claude-haiku-4-5`) is down"
        )
    );
    // Escalated once when it opened, once when it resolved; the fallback needed nobody.
    wait("the resolution is posted", Duration::from_secs(30), &|| {
        hook.received().iter().any(|r| r.body.contains("incident.resolved"))
    });
    let posts: Vec<serde_json::Value> = hook
        .received()
        .iter()
        .map(|r| serde_json::from_str(&r.body).unwrap())
        .collect();
    let kinds: Vec<(&str, &str)> = posts
        .iter()
        .map(|p| (p["type"].as_str().unwrap(), p["data"]["kind"].as_str().unwrap()))
        .collect();
    assert_eq!(
        kinds,
        [
            ("incident.opened", "provider_down"),
            ("incident.resolved", "provider_down")
        ]
    );

    // The breaker kept the calls off the provider while it was down: a handful of attempts
    // (5 to open it, one probe every 30 s, and what was in flight) answered 529, not every run's.
    let overloaded = anthropic.request_count() - anthropic.usage_log().len();
    assert!(
        (5..=12).contains(&overloaded),
        "{overloaded} attempts reached the provider while it was down, of {submitted} runs"
    );
    assert!(
        !openai.usage_log().is_empty(),
        "the fallback answered during the outage"
    );

    // The ledger: one AI row per run, on the model that answered, and its tokens exactly the
    // usage each provider reported; one fuel row per attempt.
    let mut rows = Vec::new();
    let mut fuel_rows = 0;
    for r in &all {
        let ledger = tokio
            .block_on(store.tenant("acme").ledger_of_run(&r.id.to_string()))
            .unwrap();
        let ai: Vec<_> = ledger.iter().filter(|l| l.kind == "ai").cloned().collect();
        assert_eq!(ai.len(), 1, "run {}: {ledger:?}", r.id);
        let output: serde_json::Value = serde_json::from_str(r.output.as_deref().unwrap()).unwrap();
        assert_eq!(output["model"], json!(ai[0].model), "run {}", r.id);
        fuel_rows += ledger.iter().filter(|l| l.kind == "fuel").count();
        assert_eq!(
            ledger.iter().filter(|l| l.kind == "fuel").count(),
            r.attempt as usize,
            "run {}",
            r.id
        );
        rows.extend(ai);
    }
    assert!(fuel_rows >= submitted);
    let billed = |provider: &str| {
        let mine: Vec<_> = rows
            .iter()
            .filter(|l| l.provider.as_deref() == Some(provider))
            .collect();
        let tokens = mine.iter().fold((0, 0, 0), |(i, o, c), l| {
            (i + l.input_tokens, o + l.output_tokens, c + l.cache_read_tokens)
        });
        (mine.len(), tokens)
    };
    let reported = |fake: &FakeProvider| {
        let log = fake.usage_log();
        let tokens = log.iter().fold((0, 0, 0), |(i, o, c), u| match *u {
            ReportedUsage::Anthropic {
                input_tokens,
                output_tokens,
                cache_read_input_tokens,
                ..
            } => (i + input_tokens, o + output_tokens, c + cache_read_input_tokens),
            ReportedUsage::OpenAi {
                prompt_tokens,
                completion_tokens,
                cached_tokens,
            } => (
                i + prompt_tokens - cached_tokens,
                o + completion_tokens,
                c + cached_tokens,
            ),
        });
        (log.len(), tokens)
    };
    assert_eq!(billed("anthropic"), reported(&anthropic));
    assert_eq!(billed("openai"), reported(&openai));
    assert_eq!(rows.len(), submitted, "every run's call billed once");
    assert!(
        rows.iter().all(|l| (l.provider.as_deref(), l.model.as_deref())
            == (Some("anthropic"), Some("claude-haiku-4-5"))
            || (l.provider.as_deref(), l.model.as_deref()) == (Some("openai"), Some("gpt-4o-mini"))),
        "{rows:?}"
    );

    stop(serve);
}

/// Chaos, as real processes: the PostgreSQL server of a running node stops as in a crash for a
/// few seconds under load, then starts again. `/readyz` says so (503) while it is away; every run
/// ends succeeded, recorded once, with one fuel row per attempt and the queue's counters at zero;
/// the monitor records how long the node could not reach the database (critical, escalated
/// once) and resolves it once it answers.
#[test]
fn a_postgres_restart_under_load_is_recorded_and_loses_no_run() {
    use std::io::BufRead;
    use std::time::{Duration, Instant};
    const JOBS: usize = 200;
    // Longer than a few monitor probes, shorter than a lease: the node keeps its work.
    const AWAY: Duration = Duration::from_secs(5);
    let cluster = mc_testkit::PgCluster::start();
    let url = cluster.url("postgres");
    let tokio = tokio::runtime::Runtime::new().unwrap();
    let hook = tokio.block_on(mc_testkit::WebhookSink::start([]));
    let origin = hook.origin().to_string();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("acme.yaml");
    std::fs::write(
        &file,
        "tenant: acme\nagents:\n  - name: sleeper\n    role: Sleeps\n    plugin: hostile\n",
    )
    .unwrap();
    let o = missionctl(&["apply", "-f", file.to_str().unwrap(), "--database-url", &url]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let mut serve = serve_escalating_to(&origin, ["--database-url", &url])
        .args(["--node-id", "n1"])
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(serve.stderr.take().unwrap()).lines();
    let server = loop {
        let line = lines.next().expect("serve stopped before listening").unwrap();
        if let Some(at) = line.find("listening on ") {
            break line[at + "listening on ".len()..]
                .split(';')
                .next()
                .unwrap()
                .to_string();
        }
    };
    // Keep reading what it says, so it never blocks on a full pipe.
    let log = std::thread::spawn(move || lines.map_while(Result::ok).collect::<Vec<_>>().join("\n"));
    let ready = || {
        tokio.block_on(async {
            reqwest::Client::new()
                .get(format!("{server}/readyz"))
                .timeout(Duration::from_secs(10))
                .send()
                .await
                .map(|r| r.status().as_u16())
                .unwrap_or(0)
        })
    };
    assert_eq!(ready(), 200);

    let store = tokio.block_on(mc_store::Store::open(&url)).unwrap();
    let job = mc_store::NewJob {
        tenant: "acme".into(),
        automation: None,
        agent: "sleeper".into(),
        plugin: "hostile".into(),
        input: r#"{"mode":"sleep","ms":100}"#.into(),
        trigger: "manual".into(),
        priority: 0,
        max_attempts: 5,
        run_at: None,
        idempotency_key: None,
    };
    tokio.block_on(store.enqueue(&vec![job; JOBS])).unwrap();
    let jobs = || tokio.block_on(store.jobs("acme", 10 * JOBS as i64));
    let deadline = Instant::now() + Duration::from_secs(60);
    while jobs().unwrap().iter().filter(|j| j.state == "succeeded").count() < 20 {
        assert!(Instant::now() < deadline, "the node never got going");
        std::thread::sleep(Duration::from_millis(50));
    }
    cluster.stop_server();
    let stopped = Instant::now();
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(ready(), 503, "not ready while the database is away");
    std::thread::sleep(AWAY.saturating_sub(stopped.elapsed()));
    cluster.start_server();

    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        if let Ok(all) = jobs()
            && all.iter().all(|j| j.state == "succeeded")
        {
            break;
        }
        assert!(Instant::now() < deadline, "runs did not all finish: {:?}", jobs());
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(ready(), 200);
    let all = jobs().unwrap();
    assert_eq!(all.len(), JOBS, "no run lost or added");
    assert!(all.iter().all(|j| j.output.is_some()));
    assert_eq!(tokio.block_on(store.queue_counts("acme")).unwrap(), (0, 0));
    assert_eq!(
        tokio.block_on(store.queue_mismatches()).unwrap(),
        [],
        "the queue agrees with the runs"
    );
    for j in &all {
        let ledger = tokio
            .block_on(store.tenant("acme").ledger_of_run(&j.id.to_string()))
            .unwrap();
        assert_eq!(
            ledger.iter().filter(|l| l.kind == "fuel").count(),
            j.attempt as usize,
            "run {}: one fuel row per attempt: {ledger:?}",
            j.id
        );
    }

    // What the monitor recorded, and that it told the operator once.
    let deadline = Instant::now() + Duration::from_secs(30);
    let outage = loop {
        let found: Vec<_> = tokio
            .block_on(store.incidents(50))
            .unwrap()
            .into_iter()
            .filter(|i| i.kind == "database_unreachable")
            .collect();
        if !found.is_empty() {
            break found;
        }
        assert!(Instant::now() < deadline, "the outage was not recorded");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(outage.len(), 1, "{outage:?}");
    let i = &outage[0];
    assert_eq!(
        (i.subject.as_str(), i.severity.as_str(), i.state.as_str()),
        ("n1", "critical", "resolved")
    );
    assert!(
        i.summary.starts_with("node `n1` could not reach the database for ") && i.summary.contains(" s (from "),
        "{}",
        i.summary
    );
    let secs: f64 = i.summary["node `n1` could not reach the database for ".len()..]
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (AWAY.as_secs_f64() - 2.0..AWAY.as_secs_f64() + 10.0).contains(&secs),
        "{}",
        i.summary
    );
    // Only this incident's messages: a first cycle after the restart may also find the
    // database slow, which is its own incident.
    let posted = || -> Vec<(String, String)> {
        hook.received()
            .iter()
            .map(|r| {
                let body: serde_json::Value = serde_json::from_str(&r.body).unwrap();
                (
                    body["type"].as_str().unwrap().to_string(),
                    body["data"]["kind"].as_str().unwrap().to_string(),
                )
            })
            .filter(|(_, kind)| kind == "database_unreachable")
            .collect()
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while posted().len() < 2 {
        assert!(Instant::now() < deadline, "escalation: {:?}", hook.received());
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_secs(1));
    let kinds = posted();
    assert_eq!(
        kinds,
        [
            ("incident.opened".to_string(), "database_unreachable".to_string()),
            ("incident.resolved".to_string(), "database_unreachable".to_string())
        ]
    );

    tokio.block_on(store.close());
    assert!(
        Command::new("kill")
            .args(["-TERM", &serve.id().to_string()])
            .status()
            .unwrap()
            .success()
    );
    assert!(serve.wait().unwrap().success(), "{}", log.join().unwrap());
}

#[test]
fn brands_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let d = data.to_str().unwrap();
    let file = dir.path().join("acme.yaml");
    std::fs::write(&file, TENANT_FILE).unwrap();
    assert_eq!(
        code(&missionctl(&["apply", "-f", file.to_str().unwrap(), "--data-dir", d])),
        0
    );
    let brand = dir.path().join("brand.yaml");
    let b = brand.to_str().unwrap();
    let set = |text: &str| {
        std::fs::write(&brand, text).unwrap();
        missionctl(&["brand", "set", "northwind", "-f", b, "--data-dir", d])
    };

    let o = set("name: Northwind Digital\nprimary_color: \"#1D4ED8\"\n");
    assert_eq!(
        (code(&o), stdout(&o).as_str()),
        (
            0,
            "brand of northwind created: \"Northwind Digital\", primary #1d4ed8, accent (the primary), no logo\n"
        ),
        "{}",
        stderr(&o)
    );
    let o = set(
        "name: Northwind\nprimary_color: \"#1d4ed8\"\naccent_color: \"#b45309\"\nlogo: \"data:image/png;base64,iVBORw0KGgo=\"\n",
    );
    assert_eq!(
        stdout(&o),
        "brand of northwind updated: \"Northwind\", primary #1d4ed8, accent #b45309, logo embedded (34 bytes)\n",
        "{}",
        stderr(&o)
    );

    // A mistake in the file is shown at its line; a colour that does not read on white by its
    // field; neither changes the stored brand.
    let o = set("name: Northwind\nprimary_colour: \"#1d4ed8\"\n");
    assert_eq!(code(&o), 2);
    assert!(
        stderr(&o).starts_with(&format!("error: {b}: line 2, column 1: unknown field `primary_colour`")),
        "{}",
        stderr(&o)
    );
    let o = set("name: Northwind\nprimary_color: \"#fde047\"\n");
    assert_eq!(code(&o), 2);
    assert!(
        stderr(&o).starts_with(&format!("error: {b}: primary_color: ")),
        "{}",
        stderr(&o)
    );
    let o = missionctl(&["brand", "list", "--data-dir", d]);
    assert_eq!(
        stdout(&o),
        "northwind: \"Northwind\", primary #1d4ed8, accent #b45309, logo embedded (34 bytes)\n"
    );

    let o = missionctl(&["brand", "assign", "acme", "northwind", "--data-dir", d]);
    assert_eq!(
        (code(&o), stdout(&o).as_str()),
        (0, "acme now belongs to northwind\n"),
        "{}",
        stderr(&o)
    );
    let o = missionctl(&["brand", "assign", "acme", "southwind", "--data-dir", d]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("unknown partner `southwind`"), "{}", stderr(&o));
    let o = missionctl(&["brand", "assign", "acme", "--none", "--data-dir", d]);
    assert_eq!(stdout(&o), "acme now belongs to no partner\n", "{}", stderr(&o));
    let o = missionctl(&["brand", "remove", "northwind", "--data-dir", d]);
    assert_eq!(stdout(&o), "brand of northwind removed\n", "{}", stderr(&o));
    let o = missionctl(&["brand", "list", "--data-dir", d]);
    assert_eq!((code(&o), stdout(&o).as_str()), (0, ""));
}
