//! Chat with an agent: threads (one agent, one user) and their messages in order. The server
//! runs each message through the AI gateway, which meters it like any call (run id
//! `chat-<thread>`).

use serde::Serialize;

use crate::{StoreError, TenantScope, now_micros};

/// A conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChatThread {
    pub id: i64,
    pub agent: String,
    /// The key that opened it; only it may read and write the thread.
    pub owner: String,
    pub created_at: i64,
}

/// One message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChatMessage {
    pub seq: i64,
    /// `user` or `assistant`.
    pub role: String,
    pub content: String,
    pub at: i64,
}

impl TenantScope<'_> {
    /// Opens a thread with `agent` for `owner`.
    pub async fn open_chat(&self, agent: &str, owner: &str) -> Result<ChatThread, StoreError> {
        let mut tx = self.store().write_tx().await?;
        // The tenant's row, locked, serialises thread numbering (SQLite: the single writer).
        sqlx::query(&format!(
            "SELECT id FROM tenants WHERE id = $1{}",
            self.store().for_update()
        ))
        .bind(self.id())
        .execute(&mut *tx)
        .await?;
        let (id,): (i64,) = sqlx::query_as("SELECT COALESCE(MAX(id), 0) + 1 FROM chat_threads WHERE tenant_id = $1")
            .bind(self.id())
            .fetch_one(&mut *tx)
            .await?;
        let now = now_micros();
        sqlx::query("INSERT INTO chat_threads (tenant_id, id, agent, owner, created_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(self.id())
            .bind(id)
            .bind(agent)
            .bind(owner)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(ChatThread {
            id,
            agent: agent.into(),
            owner: owner.into(),
            created_at: now,
        })
    }

    /// One thread.
    pub async fn chat(&self, id: i64) -> Result<Option<ChatThread>, StoreError> {
        let row: Option<(String, String, i64)> =
            sqlx::query_as("SELECT agent, owner, created_at FROM chat_threads WHERE tenant_id = $1 AND id = $2")
                .bind(self.id())
                .bind(id)
                .fetch_optional(self.store().pool())
                .await?;
        Ok(row.map(|(agent, owner, created_at)| ChatThread {
            id,
            agent,
            owner,
            created_at,
        }))
    }

    /// `owner`'s threads with `agent`, newest first.
    pub async fn chats(&self, agent: &str, owner: &str) -> Result<Vec<ChatThread>, StoreError> {
        let rows: Vec<(i64, i64)> = sqlx::query_as(
            "SELECT id, created_at FROM chat_threads WHERE tenant_id = $1 AND agent = $2 AND owner = $3 ORDER BY id DESC",
        )
        .bind(self.id())
        .bind(agent)
        .bind(owner)
        .fetch_all(self.store().pool())
        .await?;
        Ok(rows
            .into_iter()
            .map(|(id, created_at)| ChatThread {
                id,
                agent: agent.into(),
                owner: owner.into(),
                created_at,
            })
            .collect())
    }

    /// A thread's messages in order.
    pub async fn chat_messages(&self, thread: i64) -> Result<Vec<ChatMessage>, StoreError> {
        let rows: Vec<(i64, String, String, i64)> = sqlx::query_as(
            "SELECT seq, role, content, at FROM chat_messages WHERE tenant_id = $1 AND thread_id = $2 ORDER BY seq",
        )
        .bind(self.id())
        .bind(thread)
        .fetch_all(self.store().pool())
        .await?;
        Ok(rows
            .into_iter()
            .map(|(seq, role, content, at)| ChatMessage { seq, role, content, at })
            .collect())
    }

    /// Adds a message to a thread; returns it.
    pub async fn append_chat(&self, thread: i64, role: &str, content: &str) -> Result<ChatMessage, StoreError> {
        let mut tx = self.store().write_tx().await?;
        // The thread's row, locked, serialises its message numbering.
        sqlx::query(&format!(
            "SELECT id FROM chat_threads WHERE tenant_id = $1 AND id = $2{}",
            self.store().for_update()
        ))
        .bind(self.id())
        .bind(thread)
        .execute(&mut *tx)
        .await?;
        let (seq,): (i64,) = sqlx::query_as(
            "SELECT COALESCE(MAX(seq), 0) + 1 FROM chat_messages WHERE tenant_id = $1 AND thread_id = $2",
        )
        .bind(self.id())
        .bind(thread)
        .fetch_one(&mut *tx)
        .await?;
        let at = now_micros();
        sqlx::query(
            "INSERT INTO chat_messages (tenant_id, thread_id, seq, role, content, at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(self.id())
        .bind(thread)
        .bind(seq)
        .bind(role)
        .bind(content)
        .bind(at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(ChatMessage {
            seq,
            role: role.into(),
            content: content.into(),
            at,
        })
    }
}
