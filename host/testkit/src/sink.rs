//! A webhook receiver on 127.0.0.1 for tests and benchmarks of outbound posts: it records every
//! request (when it arrived, its headers, its body) and answers with the statuses it was given, in
//! order, then 200.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};

/// One request the sink received.
#[derive(Debug, Clone)]
pub struct Received {
    pub at: Instant,
    /// Header names in lower case, as sent.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Received {
    /// The value of header `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

#[derive(Default)]
struct Shared {
    statuses: Mutex<VecDeque<u16>>,
    received: Mutex<Vec<Received>>,
}

/// A running sink; it stops with the test's runtime.
#[derive(Clone)]
pub struct WebhookSink {
    origin: String,
    shared: Arc<Shared>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

async fn handle(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    lock(&shared.received).push(Received {
        at: Instant::now(),
        headers: headers
            .iter()
            .map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or_default().to_string()))
            .collect(),
        body: String::from_utf8_lossy(&body).into_owned(),
    });
    let status = lock(&shared.statuses).pop_front().unwrap_or(200);
    StatusCode::from_u16(status).unwrap_or(StatusCode::OK)
}

impl WebhookSink {
    /// Starts a sink answering the first requests with `statuses`, the rest with 200.
    pub async fn start(statuses: impl IntoIterator<Item = u16>) -> WebhookSink {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let origin = format!("http://{}", listener.local_addr().expect("local address"));
        let shared = Arc::new(Shared {
            statuses: Mutex::new(statuses.into_iter().collect()),
            received: Mutex::default(),
        });
        let app = axum::Router::new().fallback(handle).with_state(shared.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        WebhookSink { origin, shared }
    }

    /// `http://127.0.0.1:<port>`: the origin to allow as a test host.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// Everything received so far, in order.
    pub fn received(&self) -> Vec<Received> {
        lock(&self.shared.received).clone()
    }

    /// How many requests arrived so far.
    pub fn count(&self) -> usize {
        lock(&self.shared.received).len()
    }
}
