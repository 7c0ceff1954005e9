//! Chat with an agent: a user (an API key) opens threads with an agent of its tenant; each message
//! goes to the agent's model with the agent's instructions and the thread's history, through the
//! AI gateway (metered and budgeted like any call, as run `chat-<thread>`), and the reply streams
//! back as server-sent events: `delta` events with text as it arrives, then one `done` with the
//! stored reply and its usage, or one `error`.

use std::convert::Infallible;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use mc_ai::{CallContext, ChatRequest, Message, Role};
use mc_store::{ChatThread, Need, Principal, TenantScope};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::api::time;
use crate::auth::Auth;
use crate::error::{ApiJson, ApiPath};
use crate::{ApiError, AppState};

/// Longest message a user may send, in bytes.
pub const MAX_CHAT_MESSAGE_BYTES: usize = 32 * 1024;
/// Most earlier messages sent along with a new one: older ones drop out of the model's view.
pub const MAX_HISTORY: usize = 40;
/// Most tokens of one reply.
pub const CHAT_MAX_TOKENS: u32 = 1_024;

/// A thread.
#[derive(Debug, Serialize, ToSchema)]
pub struct Thread {
    pub id: i64,
    pub agent: String,
    pub created_at: String,
}

impl From<ChatThread> for Thread {
    fn from(t: ChatThread) -> Thread {
        Thread {
            id: t.id,
            agent: t.agent,
            created_at: time(t.created_at),
        }
    }
}

/// A message of a thread.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChatLine {
    pub seq: i64,
    /// `user` or `assistant`.
    pub role: String,
    pub content: String,
    pub at: String,
}

/// What the user says.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Say {
    pub content: String,
}

/// The thread `id`, if it is `who`'s: another user's thread answers as if it did not exist.
async fn own_thread(scope: &TenantScope<'_>, who: &Principal, id: i64) -> Result<ChatThread, ApiError> {
    match scope.chat(id).await? {
        Some(t) if t.owner == who.key_id => Ok(t),
        _ => Err(ApiError::NotFound(format!("no chat {id}"))),
    }
}

/// Opens a thread with an agent.
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/agents/{agent}/chats", tag = "chat",
    params(("tenant" = String, Path), ("agent" = String, Path)), responses((status = 201, body = Thread)))]
pub async fn open(
    State(state): State<AppState>,
    Auth(who): Auth,
    ApiPath((tenant, agent)): ApiPath<(String, String)>,
) -> Result<(StatusCode, Json<Thread>), ApiError> {
    let scope = state.store.authorize(&who, &tenant, Need::Write).await?;
    if scope.agent(&agent).await?.is_none() {
        return Err(ApiError::NotFound(format!("no agent `{agent}`")));
    }
    Ok((
        StatusCode::CREATED,
        Json(scope.open_chat(&agent, &who.key_id).await?.into()),
    ))
}

/// The caller's threads with an agent, newest first.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/agents/{agent}/chats", tag = "chat",
    params(("tenant" = String, Path), ("agent" = String, Path)), responses((status = 200, body = Vec<Thread>)))]
pub async fn list(
    State(state): State<AppState>,
    Auth(who): Auth,
    ApiPath((tenant, agent)): ApiPath<(String, String)>,
) -> Result<Json<Vec<Thread>>, ApiError> {
    let scope = state.store.authorize(&who, &tenant, Need::Read).await?;
    Ok(Json(
        scope
            .chats(&agent, &who.key_id)
            .await?
            .into_iter()
            .map(Thread::from)
            .collect(),
    ))
}

/// A thread's messages.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/chats/{chat}", tag = "chat",
    params(("tenant" = String, Path), ("chat" = i64, Path)), responses((status = 200, body = Vec<ChatLine>)))]
pub async fn messages(
    State(state): State<AppState>,
    Auth(who): Auth,
    ApiPath((tenant, id)): ApiPath<(String, i64)>,
) -> Result<Json<Vec<ChatLine>>, ApiError> {
    let scope = state.store.authorize(&who, &tenant, Need::Read).await?;
    own_thread(&scope, &who, id).await?;
    Ok(Json(
        scope
            .chat_messages(id)
            .await?
            .into_iter()
            .map(|m| ChatLine {
                seq: m.seq,
                role: m.role,
                content: m.content,
                at: time(m.at),
            })
            .collect(),
    ))
}

/// Says something in a thread; the agent's reply streams back (`text/event-stream`).
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/chats/{chat}/messages", tag = "chat",
    params(("tenant" = String, Path), ("chat" = i64, Path)), request_body = Say,
    responses((status = 200, description = "server-sent events: `delta` {text}, then `done` {seq, content, model, usage} or `error` {message}", content_type = "text/event-stream")))]
pub async fn say(
    State(state): State<AppState>,
    Auth(who): Auth,
    ApiPath((tenant, id)): ApiPath<(String, i64)>,
    ApiJson(body): ApiJson<Say>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let scope = state.store.authorize(&who, &tenant, Need::Write).await?;
    let thread = own_thread(&scope, &who, id).await?;
    if body.content.trim().is_empty() {
        return Err(ApiError::BadRequest("the message is empty".into()));
    }
    if body.content.len() > MAX_CHAT_MESSAGE_BYTES {
        return Err(ApiError::BadRequest(format!(
            "the message is {} bytes; at most {MAX_CHAT_MESSAGE_BYTES} are accepted",
            body.content.len()
        )));
    }
    let gateway = state
        .gateway
        .clone()
        .ok_or_else(|| ApiError::Unavailable("this server has no AI gateway".into()))?;
    let agent = scope
        .agent(&thread.agent)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("agent `{}` no longer exists", thread.agent)))?;
    let history = scope.chat_messages(id).await?;
    scope.append_chat(id, "user", &body.content).await?;

    let mut system = format!("You are {}, {}.", agent.name, agent.role);
    if let Some(i) = agent.instructions.as_deref().filter(|i| !i.trim().is_empty()) {
        system.push(' ');
        system.push_str(i);
    }
    let mut messages = vec![Message {
        role: Role::System,
        content: system,
    }];
    let skip = history.len().saturating_sub(MAX_HISTORY);
    for m in history.into_iter().skip(skip) {
        messages.push(Message {
            role: if m.role == "assistant" {
                Role::Assistant
            } else {
                Role::User
            },
            content: m.content,
        });
    }
    messages.push(Message {
        role: Role::User,
        content: body.content,
    });
    let request = ChatRequest {
        model: agent.model.clone().unwrap_or_else(|| mc_ai::OFFLINE_MODEL.into()),
        messages,
        max_tokens: CHAT_MAX_TOKENS,
        temperature: None,
        fallbacks: agent.fallbacks.clone(),
    };
    let ctx = CallContext {
        tenant: tenant.clone(),
        agent: agent.name.clone(),
        automation: None,
        run_id: format!("chat-{id}"),
        root_run_id: format!("chat-{id}"),
        attempt: 1,
        call_seq: None,
    };
    let (events, rx) = tokio::sync::mpsc::channel::<Event>(64);
    let store = state.store.clone();
    // The reply is produced and stored whether or not the listener stays.
    tokio::spawn(async move {
        let (deltas, mut pieces) = tokio::sync::mpsc::unbounded_channel::<String>();
        let forward = {
            let events = events.clone();
            tokio::spawn(async move {
                while let Some(text) = pieces.recv().await {
                    let event = Event::default()
                        .event("delta")
                        .json_data(serde_json::json!({ "text": text }));
                    if let Ok(e) = event {
                        let _ = events.send(e).await;
                    }
                }
            })
        };
        let answer = gateway.chat_stream(&ctx, request, Some(&deltas)).await;
        drop(deltas);
        let _ = forward.await;
        let last = match answer {
            Ok(reply) => match store
                .tenant(&ctx.tenant)
                .append_chat(id, "assistant", &reply.text)
                .await
            {
                Ok(m) => Event::default().event("done").json_data(serde_json::json!({
                    "seq": m.seq,
                    "content": m.content,
                    "model": reply.model,
                    "usage": reply.usage,
                })),
                Err(e) => Event::default()
                    .event("error")
                    .json_data(serde_json::json!({ "message": format!("the reply could not be stored: {e}") })),
            },
            Err(e) => Event::default()
                .event("error")
                .json_data(serde_json::json!({ "message": e.to_string() })),
        };
        if let Ok(e) = last {
            let _ = events.send(e).await;
        }
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|e| (Ok(e), rx)) });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}
