//! Outbound HTTP through `wasi:http`, to the hosts the run was granted.
//!
//! The host checks every request against the run's allow-list and refuses private, loopback,
//! link-local and cloud-metadata addresses; a refusal is an [`ErrorKind::NotGranted`](crate::ErrorKind)
//! error that names the URL. Redirects (301, 302, 303, 307, 308) of GET requests are followed up
//! to five times, each hop checked again by the host.
//!
//! ```no_run
//! # fn f() -> mission_control_sdk::Result<()> {
//! use mission_control_sdk::http;
//! let kpis: serde_json::Value = http::get("https://api.example.com/kpis")?.error_for_status()?.json()?;
//! # Ok(()) }
//! ```

use crate::bindings::wasi::http::outgoing_handler;
use crate::bindings::wasi::http::types::{
    ErrorCode, Fields, IncomingBody, Method as WitMethod, OutgoingBody, OutgoingRequest, Scheme,
};
use crate::bindings::wasi::io::streams::StreamError;
use crate::{Error, Result};

/// Most redirects followed for one request.
const MAX_REDIRECTS: u32 = 5;
/// Largest chunk written to the request body stream at once (the stream's guaranteed minimum).
const WRITE_CHUNK: usize = 4096;
/// Largest chunk read from the response body at once.
const READ_CHUNK: u64 = 64 * 1024;

/// HTTP methods.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// GET
    Get,
    /// POST
    Post,
    /// PUT
    Put,
    /// PATCH
    Patch,
    /// DELETE
    Delete,
    /// HEAD
    Head,
}

/// A request to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The method.
    pub method: Method,
    /// An absolute `http://` or `https://` URL.
    pub url: String,
    /// Header names and values.
    pub headers: Vec<(String, String)>,
    /// The body (empty for none).
    pub body: Vec<u8>,
}

impl Request {
    /// A request with no headers and no body.
    pub fn new(method: Method, url: impl Into<String>) -> Request {
        Request {
            method,
            url: url.into(),
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// Adds a header.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Request {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Sets a JSON body and its content type.
    pub fn json(mut self, body: &impl serde::Serialize) -> Result<Request> {
        self.body = serde_json::to_vec(body)?;
        Ok(self.header("content-type", "application/json"))
    }
}

/// A response, with its whole body read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// Header names (lower-case) and values.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Response {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as text (invalid UTF-8 replaced).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body decoded as JSON.
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T> {
        serde_json::from_slice(&self.body)
            .map_err(|e| Error::upstream(format!("the response is not the JSON expected: {e}")).with_retryable(false))
    }

    /// `Ok(self)` for 2xx, an upstream error naming the status otherwise (retryable for 429 and 5xx).
    pub fn error_for_status(self) -> Result<Response> {
        match self.status {
            200..=299 => Ok(self),
            s => Err(Error::upstream(format!("HTTP status {s}")).with_retryable(s == 429 || s >= 500)),
        }
    }
}

/// GET `url`.
pub fn get(url: &str) -> Result<Response> {
    send(Request::new(Method::Get, url))
}

/// POST `body` as JSON to `url`.
pub fn post_json(url: &str, body: &impl serde::Serialize) -> Result<Response> {
    send(Request::new(Method::Post, url).json(body)?)
}

/// Sends `request`, following redirects of GET and HEAD requests.
pub fn send(mut request: Request) -> Result<Response> {
    for _ in 0..=MAX_REDIRECTS {
        let response = send_once(&request)?;
        let redirect = matches!(response.status, 301 | 302 | 303 | 307 | 308)
            && matches!(request.method, Method::Get | Method::Head);
        match (redirect, response.header("location")) {
            (true, Some(location)) => request.url = resolve(&request.url, location)?,
            _ => return Ok(response),
        }
    }
    Err(Error::upstream(format!("more than {MAX_REDIRECTS} redirects from {}", request.url)).with_retryable(false))
}

/// The parts of an absolute URL that `wasi:http` takes separately.
#[derive(Debug, PartialEq, Eq)]
struct Url<'a> {
    https: bool,
    authority: &'a str,
    path_and_query: &'a str,
}

fn parse_url(url: &str) -> Result<Url<'_>> {
    let bad = || Error::invalid_input(format!("`{url}` is not an absolute http(s) URL"));
    let (scheme, rest) = url.split_once("://").ok_or_else(bad)?;
    let https = match scheme.to_ascii_lowercase().as_str() {
        "https" => true,
        "http" => false,
        _ => return Err(bad()),
    };
    let split = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(split);
    if authority.is_empty() || authority.contains('@') {
        return Err(bad());
    }
    let path = path.split('#').next().unwrap_or("");
    Ok(Url {
        https,
        authority,
        path_and_query: if path.is_empty() { "/" } else { path },
    })
}

/// Resolves a `Location` header against the URL that answered with it.
fn resolve(base: &str, location: &str) -> Result<String> {
    if location.contains("://") {
        return Ok(location.to_string());
    }
    let b = parse_url(base)?;
    let origin = format!("{}://{}", if b.https { "https" } else { "http" }, b.authority);
    if location.starts_with('/') {
        return Ok(format!("{origin}{location}"));
    }
    let dir = b.path_and_query.split('?').next().unwrap_or("/");
    let dir = &dir[..dir.rfind('/').map_or(0, |i| i + 1)];
    Ok(format!("{origin}{dir}{location}"))
}

fn describe(url: &str, code: &ErrorCode) -> Error {
    match code {
        ErrorCode::HttpRequestDenied => Error::not_granted(format!(
            "HTTP request to {url} refused by the host: not in this run's allow-list"
        )),
        ErrorCode::DestinationIpProhibited => Error::not_granted(format!(
            "HTTP request to {url} refused by the host: it resolves to a private, loopback, link-local or metadata address"
        )),
        ErrorCode::ConnectionLimitReached => {
            Error::internal(format!("HTTP request to {url} refused: too many requests in one run"))
        }
        ErrorCode::DnsError(_) => {
            Error::upstream(format!("HTTP request to {url} failed: the host name does not resolve"))
        }
        other => Error::upstream(format!("HTTP request to {url} failed: {other:?}")),
    }
}

fn send_once(request: &Request) -> Result<Response> {
    let url = parse_url(&request.url)?;
    let headers = Fields::new();
    for (name, value) in &request.headers {
        headers
            .append(name, value.as_bytes())
            .map_err(|e| Error::invalid_input(format!("header `{name}` is not allowed: {e:?}")))?;
    }
    let req = OutgoingRequest::new(headers);
    let method = match request.method {
        Method::Get => WitMethod::Get,
        Method::Post => WitMethod::Post,
        Method::Put => WitMethod::Put,
        Method::Patch => WitMethod::Patch,
        Method::Delete => WitMethod::Delete,
        Method::Head => WitMethod::Head,
    };
    let invalid = || Error::invalid_input(format!("`{}` is not a valid URL", request.url));
    req.set_method(&method).map_err(|_| invalid())?;
    req.set_scheme(Some(if url.https { &Scheme::Https } else { &Scheme::Http }))
        .map_err(|_| invalid())?;
    req.set_authority(Some(url.authority)).map_err(|_| invalid())?;
    req.set_path_with_query(Some(url.path_and_query))
        .map_err(|_| invalid())?;

    // Send first, then stream the body: the host consumes the body while sending, so writing
    // it all before `handle` could fill the stream's buffer and block forever.
    let body = req
        .body()
        .map_err(|_| Error::internal("cannot open the request body"))?;
    let pending = outgoing_handler::handle(req, None).map_err(|code| describe(&request.url, &code))?;
    {
        let stream = body
            .write()
            .map_err(|_| Error::internal("cannot open the request body stream"))?;
        for chunk in request.body.chunks(WRITE_CHUNK) {
            stream
                .blocking_write_and_flush(chunk)
                .map_err(|e| Error::upstream(format!("cannot send the request body to {}: {e:?}", request.url)))?;
        }
    }
    OutgoingBody::finish(body, None).map_err(|code| describe(&request.url, &code))?;

    let response = loop {
        if let Some(result) = pending.get() {
            break result
                .map_err(|_| Error::internal("the response was already taken"))?
                .map_err(|code| describe(&request.url, &code))?;
        }
        pending.subscribe().block();
    };
    let status = response.status();
    let headers = response
        .headers()
        .entries()
        .into_iter()
        .map(|(n, v)| (n, String::from_utf8_lossy(&v).into_owned()))
        .collect();
    let incoming = response
        .consume()
        .map_err(|_| Error::internal("cannot read the response body"))?;
    let body = read_body(&incoming, &request.url)?;
    drop(incoming);
    Ok(Response { status, headers, body })
}

fn read_body(body: &IncomingBody, url: &str) -> Result<Vec<u8>> {
    let stream = body
        .stream()
        .map_err(|_| Error::internal("cannot open the response body stream"))?;
    let mut out = Vec::new();
    loop {
        match stream.blocking_read(READ_CHUNK) {
            Ok(chunk) => out.extend_from_slice(&chunk),
            Err(StreamError::Closed) => return Ok(out),
            Err(StreamError::LastOperationFailed(e)) => {
                return Err(Error::upstream(format!(
                    "reading the response from {url} failed: {}",
                    e.to_debug_string()
                )));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_urls() {
        assert_eq!(
            parse_url("https://api.example.com:8443/v1/kpis?week=3#frag").unwrap(),
            Url {
                https: true,
                authority: "api.example.com:8443",
                path_and_query: "/v1/kpis?week=3"
            }
        );
        assert_eq!(parse_url("http://h").unwrap().path_and_query, "/");
        assert_eq!(parse_url("http://h?x=1").unwrap().path_and_query, "?x=1");
        assert!(parse_url("ftp://h/x").is_err());
        assert!(parse_url("https://user@h/").is_err());
        assert!(parse_url("/relative").is_err());
    }

    #[test]
    fn resolves_redirects() {
        assert_eq!(resolve("https://a.com/x/y?q", "/z").unwrap(), "https://a.com/z");
        assert_eq!(resolve("https://a.com/x/y", "z").unwrap(), "https://a.com/x/z");
        assert_eq!(resolve("https://a.com/x", "http://b.com/").unwrap(), "http://b.com/");
    }
}
