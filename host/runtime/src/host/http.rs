//! `wasi:http/outgoing-handler`, allow-listed: wasmtime-wasi-http does the protocol work and calls
//! [`EgressHooks::send_request`] for each request, which vets the destination with
//! [`mc_egress`] and then connects to the vetted address itself (never resolving the name a second
//! time, which would reopen the door to DNS rebinding).
//!
//! Redirects are not followed here: a 3xx reaches the guest, and following it is a new request
//! that is vetted again.

use std::future::Future;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::task::{Poll, ready};
use std::time::Duration;

use http_body_util::BodyExt;
use mc_egress::{AllowList, EgressError, Scheme, Vetted};
use tokio::net::TcpStream;
use wasmtime_wasi_http::io::TokioIo;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

use crate::outcome::Denial;
use crate::state::{Denials, lock};

/// Most outbound requests per run: a plugin polling an API in a loop is stopped.
pub const MAX_HTTP_REQUESTS_PER_RUN: u32 = 1_000;
/// Longest wait for a TCP connection (and the TLS handshake) unless the guest asks for less.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest wait for the response head unless the guest asks for less. The run's deadline bounds
/// the whole request in any case.
pub const FIRST_BYTE_TIMEOUT: Duration = Duration::from_secs(60);

type IoFuture = Box<dyn Future<Output = Result<(), Error>> + Send>;
type SendFuture = Box<dyn Future<Output = Result<(http::Response<WasiBody>, IoFuture), Error>> + Send>;

/// The per-run HTTP policy.
pub struct EgressHooks {
    pub(crate) allow: Arc<AllowList>,
    pub(crate) denials: Denials,
    pub(crate) requests: Arc<AtomicU32>,
}

impl WasiHttpHooks for EgressHooks {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        fut: IoFuture,
    ) -> SendFuture {
        drop(fut);
        let allow = self.allow.clone();
        let denials = self.denials.clone();
        let count = self.requests.fetch_add(1, Ordering::Relaxed) + 1;
        Box::new(async move {
            if count > MAX_HTTP_REQUESTS_PER_RUN {
                return Err(Error::ConnectionLimitReached);
            }
            let uri = request.uri();
            let scheme = uri
                .scheme_str()
                .and_then(Scheme::parse)
                .ok_or(Error::HttpProtocolError)?;
            let host = uri.host().ok_or(Error::HttpRequestUriInvalid)?.to_string();
            let port = uri.port_u16().unwrap_or(scheme.default_port());
            let vetted = match allow.vet(scheme, &host, port).await {
                Ok(v) => v,
                Err(e) => {
                    tracing::info!(%e, "outbound request refused");
                    let code = match &e {
                        EgressError::NotAllowed { .. } | EgressError::InvalidPattern { .. } => Error::HttpRequestDenied,
                        EgressError::ForbiddenAddress { .. } => Error::DestinationIpProhibited,
                        EgressError::Dns { reason, .. } => Error::DnsError {
                            rcode: Some(reason.clone()),
                            info_code: None,
                        },
                    };
                    if !matches!(e, EgressError::Dns { .. }) {
                        lock(&denials).push(Denial {
                            capability: "http".into(),
                            detail: e.to_string(),
                        });
                    }
                    return Err(code);
                }
            };
            send_vetted(request, options, vetted).await
        })
    }
}

fn tls_config() -> Arc<rustls::ClientConfig> {
    mc_egress::tls_client_config()
}

trait Stream: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Sync + Unpin + 'static {}
impl<T> Stream for T where T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Sync + Unpin + 'static {}

/// Sends `request` over a connection to one of `vetted.addrs`, presenting `vetted.host` for TLS.
async fn send_vetted(
    mut request: http::Request<WasiBody>,
    options: Option<RequestOptions>,
    vetted: Vetted,
) -> Result<(http::Response<WasiBody>, IoFuture), Error> {
    let connect_timeout = options
        .and_then(|o| o.connect_timeout)
        .unwrap_or(CONNECT_TIMEOUT)
        .min(CONNECT_TIMEOUT);
    let first_byte_timeout = options
        .and_then(|o| o.first_byte_timeout)
        .unwrap_or(FIRST_BYTE_TIMEOUT)
        .min(FIRST_BYTE_TIMEOUT);

    let tcp = match tokio::time::timeout(connect_timeout, TcpStream::connect(&vetted.addrs[..])).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => return Err(Error::ConnectionRefused),
        Ok(Err(e)) => return Err(Error::Connect(e)),
        Err(_) => return Err(Error::ConnectionTimeout),
    };
    let stream: Box<dyn Stream> = match vetted.scheme {
        Scheme::Http => Box::new(tcp),
        Scheme::Https => {
            let name = match vetted.host.parse::<std::net::IpAddr>() {
                Ok(ip) => rustls::pki_types::ServerName::from(ip),
                Err(_) => rustls::pki_types::ServerName::try_from(vetted.host.clone())?,
            };
            let tls = tokio::time::timeout(
                connect_timeout,
                tokio_rustls::TlsConnector::from(tls_config()).connect(name, tcp),
            )
            .await
            .map_err(|_| Error::ConnectionTimeout)?
            .map_err(Error::Tls)?;
            Box::new(tls)
        }
    };
    let (mut sender, conn) = tokio::time::timeout(
        connect_timeout,
        hyper::client::conn::http1::handshake(TokioIo::new(stream)),
    )
    .await
    .map_err(|_| Error::ConnectionTimeout)??;

    // The request carries scheme and authority; on the wire (no proxy) only the path is sent.
    let path = request
        .uri()
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/")
        .to_string();
    *request.uri_mut() = http::Uri::builder()
        .path_and_query(path)
        .build()
        .map_err(|_| Error::HttpRequestUriInvalid)?;

    let send = async move {
        tokio::time::timeout(first_byte_timeout, sender.send_request(request))
            .await
            .map_err(|_| Error::ConnectionReadTimeout)?
            .map_err(Error::from)
    };
    let mut send = pin!(send);
    let mut conn = Some(conn);
    // Drive the connection while waiting for the response head.
    let response = std::future::poll_fn(|cx| match send.as_mut().poll(cx) {
        Poll::Ready(r) => Poll::Ready(r),
        Poll::Pending => {
            let Some(c) = conn.as_mut() else { return Poll::Pending };
            let r = ready!(Pin::new(c).poll(cx));
            conn = None;
            match r {
                Ok(()) => send.as_mut().poll(cx),
                Err(e) => Poll::Ready(Err(Error::from(e))),
            }
        }
    })
    .await?;
    let io: IoFuture = Box::new(async move {
        match conn {
            Some(c) => c.await.map_err(Error::from),
            None => Ok(()),
        }
    });
    Ok((response.map(|body| body.map_err(Error::from).boxed_unsync()), io))
}
