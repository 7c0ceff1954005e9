//! Email for deliveries addressed `mailto:…` (escalated incidents): a small SMTP client
//! (RFC 5321) that speaks to the deployment's relay — EHLO, STARTTLS or implicit TLS, AUTH PLAIN,
//! one message — and the message itself (RFC 5322, UTF-8 text in base64, the subject as an
//! RFC 2047 encoded word). The relay is the operator's own configuration, like the database URL,
//! so it is not put through the egress policy that guards tenant-controlled URLs; the recipient
//! is only an address handed to it.
//!
//! A 4xx reply is a transient failure (retried with the outbox's backoff), a 5xx one is final.
//! The Message-ID is the delivery's, the same on every attempt, so a mail client shows a
//! repeated attempt once.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// Longest reply line accepted from a relay (RFC 5321 allows 512; some relays send more).
const MAX_REPLY_LINE: usize = 4096;
/// Lines of one multi-line reply accepted (EHLO lists a dozen extensions).
const MAX_REPLY_LINES: usize = 100;
/// Base64 line length of the body (RFC 2045's limit).
const BASE64_LINE: usize = 76;

/// How the connection to the relay is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpTls {
    /// `smtps://`: TLS from the first byte (port 465).
    Implicit,
    /// `smtp://`: plain connection upgraded with STARTTLS, which the relay must offer (port 587).
    StartTls,
    /// `smtp://…?tls=none`: no TLS at all; only for a relay on this machine or a test sink.
    None,
}

/// The deployment's mail relay, parsed from `smtp[s]://[user:password@]host[:port][?tls=none]`.
#[derive(Clone, PartialEq, Eq)]
pub struct SmtpConfig {
    pub host: String,
    pub port: u16,
    pub tls: SmtpTls,
    pub username: Option<String>,
    pub password: Option<String>,
    /// The sender address (`From:` and `MAIL FROM`).
    pub from: String,
    /// Longest one exchange with the relay may take.
    pub timeout: Duration,
}

impl std::fmt::Debug for SmtpConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The password is a secret: never in a log line.
        f.debug_struct("SmtpConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field("username", &self.username)
            .field("from", &self.from)
            .finish_non_exhaustive()
    }
}

impl SmtpConfig {
    /// Parses the relay's URL; `from` is the sender address. The error says what is wrong.
    pub fn parse(url: &str, from: &str) -> Result<SmtpConfig, String> {
        let parsed = reqwest::Url::parse(url).map_err(|e| format!("`{url}` is not a URL: {e}"))?;
        let (tls, default_port) = match parsed.scheme() {
            "smtps" => (SmtpTls::Implicit, 465),
            "smtp" => match parsed
                .query_pairs()
                .find(|(k, _)| k == "tls")
                .map(|(_, v)| v.into_owned())
            {
                None => (SmtpTls::StartTls, 587),
                Some(v) if v == "none" => (SmtpTls::None, 25),
                Some(v) if v == "starttls" => (SmtpTls::StartTls, 587),
                Some(v) => return Err(format!("tls={v}: expected tls=none or tls=starttls")),
            },
            other => return Err(format!("the scheme must be smtp or smtps, got `{other}`")),
        };
        let host = parsed
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| format!("`{url}` names no host"))?
            .trim_matches(|c| c == '[' || c == ']')
            .to_string();
        let decode = |s: &str| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8()
                .map(|d| d.into_owned())
                .map_err(|_| "the user or password in the SMTP URL is not valid percent-encoded UTF-8".to_string())
        };
        let username = (!parsed.username().is_empty())
            .then(|| decode(parsed.username()))
            .transpose()?;
        let password = parsed.password().map(decode).transpose()?;
        if password.is_some() && tls == SmtpTls::None && !is_loopback(&host) {
            return Err("a password would cross the network in clear text: use smtps:// or smtp:// (STARTTLS)".into());
        }
        valid_address(from).map_err(|e| format!("sender {e}"))?;
        Ok(SmtpConfig {
            host,
            port: parsed.port().unwrap_or(default_port),
            tls,
            username,
            password,
            from: from.to_string(),
            timeout: Duration::from_secs(30),
        })
    }
}

fn is_loopback(host: &str) -> bool {
    host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

pub use mc_config::valid_email as valid_address;

/// A message to send.
#[derive(Debug, Clone)]
pub struct Mail<'a> {
    pub to: &'a str,
    pub subject: &'a str,
    pub body: &'a str,
    /// Without angle brackets.
    pub message_id: &'a str,
    /// Extra headers, `(name, ASCII value)`.
    pub headers: &'a [(&'a str, &'a str)],
}

/// Why a message was not sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmtpError {
    pub message: String,
    /// Whether trying again later may work (a 4xx reply, a network failure).
    pub transient: bool,
}

impl std::fmt::Display for SmtpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

fn transient(message: String) -> SmtpError {
    SmtpError {
        message,
        transient: true,
    }
}

/// The message as sent after DATA: headers, a blank line, the body in base64, CRLF line ends.
pub fn render(from: &str, mail: &Mail<'_>, date: &str) -> String {
    let mut m = String::new();
    m.push_str(&format!("From: Mission Control <{from}>\r\n"));
    m.push_str(&format!("To: <{}>\r\n", mail.to));
    m.push_str(&format!("Subject: {}\r\n", encode_header(mail.subject)));
    m.push_str(&format!("Date: {date}\r\n"));
    m.push_str(&format!("Message-ID: <{}>\r\n", mail.message_id));
    m.push_str("MIME-Version: 1.0\r\n");
    m.push_str("Content-Type: text/plain; charset=utf-8\r\n");
    m.push_str("Content-Transfer-Encoding: base64\r\n");
    for (name, value) in mail.headers {
        m.push_str(&format!("{name}: {}\r\n", value.replace(['\r', '\n'], " ")));
    }
    m.push_str("\r\n");
    let body = B64.encode(mail.body.replace("\r\n", "\n").replace('\n', "\r\n"));
    for chunk in body.as_bytes().chunks(BASE64_LINE) {
        m.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        m.push_str("\r\n");
    }
    m
}

/// A header value as is when it is printable ASCII, else as RFC 2047 encoded words (each short
/// enough for a 78-character line).
fn encode_header(value: &str) -> String {
    let value = value.replace(['\r', '\n'], " ");
    if value.chars().all(|c| (' '..='~').contains(&c)) {
        return value;
    }
    let mut words = Vec::new();
    let mut chunk = String::new();
    for c in value.chars() {
        if chunk.len() + c.len_utf8() > 45 {
            words.push(format!("=?utf-8?b?{}?=", B64.encode(&chunk)));
            chunk.clear();
        }
        chunk.push(c);
    }
    if !chunk.is_empty() {
        words.push(format!("=?utf-8?b?{}?=", B64.encode(&chunk)));
    }
    words.join("\r\n ")
}

/// The date as RFC 5322 writes it, in UTC.
pub fn rfc5322_date(at: jiff::Timestamp) -> String {
    at.strftime("%a, %d %b %Y %H:%M:%S +0000").to_string()
}

trait Io: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}

struct Conn {
    io: BufReader<Box<dyn Io>>,
    timeout: Duration,
}

impl Conn {
    /// Reads one (maybe multi-line) reply: its code and text.
    async fn reply(&mut self) -> Result<(u16, String), SmtpError> {
        let mut text = String::new();
        for _ in 0..MAX_REPLY_LINES {
            let mut line = String::new();
            let n = tokio::time::timeout(
                self.timeout,
                (&mut self.io).take(MAX_REPLY_LINE as u64).read_line(&mut line),
            )
            .await
            .map_err(|_| transient("the mail relay did not answer in time".into()))?
            .map_err(|e| transient(format!("reading from the mail relay: {e}")))?;
            if n == 0 {
                return Err(transient("the mail relay closed the connection".into()));
            }
            let line = line.trim_end();
            let code = line
                .get(..3)
                .and_then(|c| c.parse::<u16>().ok())
                .ok_or_else(|| transient(format!("the mail relay answered something that is not SMTP: `{line}`")))?;
            text.push_str(line.get(4..).unwrap_or_default());
            if line.as_bytes().get(3) != Some(&b'-') {
                return Ok((code, text));
            }
            text.push('\n');
        }
        Err(transient("the mail relay's reply has too many lines".into()))
    }

    async fn send(&mut self, line: &str) -> Result<(), SmtpError> {
        let io = self.io.get_mut();
        tokio::time::timeout(self.timeout, async {
            io.write_all(line.as_bytes()).await?;
            io.write_all(b"\r\n").await?;
            io.flush().await
        })
        .await
        .map_err(|_| transient("writing to the mail relay timed out".into()))?
        .map_err(|e| transient(format!("writing to the mail relay: {e}")))
    }

    /// Sends `line` (when given) and expects a reply of class `want` (2 or 3).
    async fn expect(&mut self, line: Option<&str>, want: u16, what: &str) -> Result<String, SmtpError> {
        if let Some(line) = line {
            self.send(line).await?;
        }
        let (code, text) = self.reply().await?;
        if code / 100 == want {
            Ok(text)
        } else {
            Err(SmtpError {
                message: format!("the mail relay refused {what}: {code} {}", text.replace('\n', " ")),
                transient: code / 100 == 4,
            })
        }
    }
}

async fn tls(host: &str, io: Box<dyn Io>, timeout: Duration) -> Result<Box<dyn Io>, SmtpError> {
    let name = match host.parse::<std::net::IpAddr>() {
        Ok(ip) => rustls::pki_types::ServerName::from(ip),
        Err(_) => rustls::pki_types::ServerName::try_from(host.to_string()).map_err(|e| SmtpError {
            message: format!("`{host}` is not a valid TLS server name: {e}"),
            transient: false,
        })?,
    };
    let stream = tokio::time::timeout(
        timeout,
        tokio_rustls::TlsConnector::from(mc_egress::tls_client_config()).connect(name, io),
    )
    .await
    .map_err(|_| transient("the TLS handshake with the mail relay timed out".into()))?
    .map_err(|e| transient(format!("TLS with the mail relay failed: {e}")))?;
    Ok(Box::new(stream))
}

/// Sends one message through the relay.
pub async fn send(config: &SmtpConfig, mail: &Mail<'_>) -> Result<(), SmtpError> {
    valid_address(mail.to).map_err(|message| SmtpError {
        message,
        transient: false,
    })?;
    let tcp = tokio::time::timeout(config.timeout, TcpStream::connect((config.host.as_str(), config.port)))
        .await
        .map_err(|_| {
            transient(format!(
                "connecting to the mail relay {}:{} timed out",
                config.host, config.port
            ))
        })?
        .map_err(|e| {
            transient(format!(
                "cannot connect to the mail relay {}:{}: {e}",
                config.host, config.port
            ))
        })?;
    let mut io: Box<dyn Io> = Box::new(tcp);
    if config.tls == SmtpTls::Implicit {
        io = tls(&config.host, io, config.timeout).await?;
    }
    let mut conn = Conn {
        io: BufReader::new(io),
        timeout: config.timeout,
    };
    conn.expect(None, 2, "the connection").await?;
    let hello = format!("EHLO {}", hello_name(&config.from));
    let mut extensions = conn.expect(Some(&hello), 2, "EHLO").await?;
    if config.tls == SmtpTls::StartTls {
        if !extensions.lines().any(|l| l.trim().eq_ignore_ascii_case("STARTTLS")) {
            return Err(SmtpError {
                message: format!(
                    "the mail relay {} does not offer STARTTLS; use smtps:// or, for a relay on this machine, ?tls=none",
                    config.host
                ),
                transient: false,
            });
        }
        conn.expect(Some("STARTTLS"), 2, "STARTTLS").await?;
        let plain = conn.io.into_inner();
        conn = Conn {
            io: BufReader::new(tls(&config.host, plain, config.timeout).await?),
            timeout: config.timeout,
        };
        extensions = conn.expect(Some(&hello), 2, "EHLO").await?;
    }
    if let (Some(user), Some(password)) = (&config.username, &config.password) {
        if !extensions
            .lines()
            .any(|l| l.trim().to_ascii_uppercase().starts_with("AUTH"))
        {
            return Err(SmtpError {
                message: format!(
                    "the mail relay {} offers no login (AUTH), but the SMTP URL has a password",
                    config.host
                ),
                transient: false,
            });
        }
        let token = B64.encode(format!("\0{user}\0{password}"));
        conn.expect(Some(&format!("AUTH PLAIN {token}")), 2, "the login")
            .await?;
    }
    conn.expect(Some(&format!("MAIL FROM:<{}>", config.from)), 2, "the sender")
        .await?;
    conn.expect(Some(&format!("RCPT TO:<{}>", mail.to)), 2, "the recipient")
        .await?;
    conn.expect(Some("DATA"), 3, "DATA").await?;
    let message = render(&config.from, mail, &rfc5322_date(jiff::Timestamp::now()));
    // Dot-stuffing: a line that starts with a dot gets another, so none ends the message early.
    let mut data = String::with_capacity(message.len() + 8);
    for line in message.split("\r\n") {
        if line.starts_with('.') {
            data.push('.');
        }
        data.push_str(line);
        data.push_str("\r\n");
    }
    data.truncate(data.len().saturating_sub(2));
    data.push('.');
    conn.expect(Some(&data), 2, "the message").await?;
    let _ = conn.send("QUIT").await;
    Ok(())
}

/// The name this node greets the relay with: the sender's domain (a relay may check it resolves;
/// our own host name often does not).
fn hello_name(from: &str) -> &str {
    from.rsplit_once('@').map_or("localhost", |(_, d)| d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relay_urls_parse_with_clear_errors() {
        let c = SmtpConfig::parse("smtps://ops%40acme:p%20w@mail.example.com", "alerts@acme.example").unwrap();
        assert_eq!(
            (c.host.as_str(), c.port, c.tls),
            ("mail.example.com", 465, SmtpTls::Implicit)
        );
        assert_eq!(c.username.as_deref(), Some("ops@acme"));
        assert_eq!(c.password.as_deref(), Some("p w"));
        let c = SmtpConfig::parse("smtp://mail.example.com", "a@b.example").unwrap();
        assert_eq!((c.port, c.tls), (587, SmtpTls::StartTls));
        let c = SmtpConfig::parse("smtp://127.0.0.1:2525?tls=none", "a@b.example").unwrap();
        assert_eq!((c.port, c.tls), (2525, SmtpTls::None));
        assert_eq!(
            SmtpConfig::parse("http://mail.example.com", "a@b.example").unwrap_err(),
            "the scheme must be smtp or smtps, got `http`"
        );
        assert_eq!(
            SmtpConfig::parse("smtp://u:p@mail.example.com?tls=none", "a@b.example").unwrap_err(),
            "a password would cross the network in clear text: use smtps:// or smtp:// (STARTTLS)"
        );
        assert_eq!(
            SmtpConfig::parse("smtp://mail.example.com", "nobody").unwrap_err(),
            "sender `nobody` is not an email address (expected name@domain)"
        );
        assert!(
            !format!(
                "{:?}",
                SmtpConfig::parse("smtps://u:secret@h.example", "a@b.example").unwrap()
            )
            .contains("secret")
        );
    }

    #[test]
    fn a_message_is_base64_utf8_with_an_encoded_subject() {
        let mail = Mail {
            to: "ops@acme.example",
            subject: "Incident: café down",
            body: "line one\n.line two",
            message_id: "msg_mc_7@mission-control",
            headers: &[("X-Mission-Control-Event", "incident.opened")],
        };
        let text = render("alerts@acme.example", &mail, "Sat, 28 Nov 2026 18:00:00 +0000");
        assert!(text.contains("Subject: =?utf-8?b?"), "{text}");
        assert!(text.contains("Message-ID: <msg_mc_7@mission-control>\r\n"));
        assert!(text.contains(&B64.encode("line one\r\n.line two")));
        assert!(text.lines().all(|l| l.len() <= 78), "{text}");
    }
}
