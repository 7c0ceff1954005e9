//! A mail server for tests of escalation by email: Python's aiosmtpd (`make test` installs it),
//! started on a free port of 127.0.0.1 by [`SmtpSink::start`]. It parses each message with
//! Python's email package and reports it here as a [`Mail`]; it refuses the first messages it is
//! told to with a transient 451, so a test can watch the sender retry.

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::AsyncBufReadExt;

/// A message the sink accepted, as Python's email package read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mail {
    pub from: String,
    pub to: Vec<String>,
    /// Decoded (RFC 2047 words joined).
    pub subject: String,
    pub message_id: String,
    /// The `X-Mission-Control-Event` header.
    pub event: String,
    pub content_type: String,
    /// Decoded from its transfer encoding, with `\n` line ends.
    pub body: String,
    /// What the parser found wrong with the message; empty for a well-formed one.
    pub defects: Vec<String>,
}

/// A running sink; the server stops when this is dropped.
pub struct SmtpSink {
    port: u16,
    mails: Arc<Mutex<Vec<Mail>>>,
    refused: Arc<Mutex<usize>>,
    _child: tokio::process::Child,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl SmtpSink {
    /// Starts the sink; it refuses the first `fail_first` messages with 451. Panics with what to
    /// install if aiosmtpd is missing.
    pub async fn start(fail_first: usize) -> SmtpSink {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/py/smtp_sink.py");
        let mut child = tokio::process::Command::new("python3")
            .arg(script)
            .arg(port.to_string())
            .arg(fail_first.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("python3 runs");
        let mut lines = tokio::io::BufReader::new(child.stdout.take().expect("piped")).lines();
        let first = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
            .await
            .expect("the SMTP sink starts within 20 s")
            .expect("read the sink's output");
        assert!(
            first.as_deref().is_some_and(|l| l.contains("ready")),
            "the SMTP sink did not start (is aiosmtpd installed? `python3 -m pip install aiosmtpd==1.4.6`): {first:?}"
        );
        let mails = Arc::new(Mutex::new(Vec::new()));
        let refused = Arc::new(Mutex::new(0));
        tokio::spawn({
            let mails = mails.clone();
            let refused = refused.clone();
            async move {
                while let Ok(Some(line)) = lines.next_line().await {
                    let v: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
                    if v["refused"] == true {
                        *lock(&refused) += 1;
                        continue;
                    }
                    let s = |k: &str| v[k].as_str().unwrap_or_default().to_string();
                    let list = |k: &str| {
                        v[k].as_array()
                            .map(|a| a.iter().filter_map(|x| x.as_str().map(str::to_string)).collect())
                            .unwrap_or_default()
                    };
                    lock(&mails).push(Mail {
                        from: s("from"),
                        to: list("to"),
                        subject: s("subject"),
                        message_id: s("message_id"),
                        event: s("event"),
                        content_type: s("content_type"),
                        // MIME text travels with CRLF line ends; tests read lines.
                        body: s("body").replace("\r\n", "\n"),
                        defects: list("defects"),
                    });
                }
            }
        });
        SmtpSink {
            port,
            mails,
            refused,
            _child: child,
        }
    }

    /// The relay URL to give the sender (`smtp://127.0.0.1:PORT?tls=none`).
    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}?tls=none", self.port)
    }

    /// The messages accepted so far.
    pub fn mails(&self) -> Vec<Mail> {
        lock(&self.mails).clone()
    }

    /// How many messages were refused (451).
    pub fn refused(&self) -> usize {
        *lock(&self.refused)
    }

    /// Waits until `n` messages were accepted (or `within` passed) and returns those accepted.
    pub async fn wait_for(&self, n: usize, within: Duration) -> Vec<Mail> {
        let until = tokio::time::Instant::now() + within;
        while lock(&self.mails).len() < n && tokio::time::Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.mails()
    }
}
