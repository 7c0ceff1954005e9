//! The running totals of migration 21 (`ledger_totals`, `run_totals`): what they add up to,
//! counting runs into and out of the finished states, and folding PostgreSQL's deltas. They are
//! written in the transaction of the change they count: the ledger's by the statements that write
//! it (on SQLite by its trigger), the runs' by [`count_finished`], which every transaction that
//! moves a run into or out of a finished state calls (migration 25 replaced the triggers on
//! `jobs`, which SQLite ran row by row on every update of every run: 4-8 µs a row, more than the
//! update itself). The store tests `running_totals_agree_with_the_ledger_and_the_runs` and
//! `totals_queue_and_counters_follow_every_move` hold every such path to the runs themselves.
//!
//! On SQLite each key is one row, updated in place. On PostgreSQL each statement that changes a
//! total appends a delta row (`fresh`), because one row per key would make concurrent nodes queue,
//! and deadlock, on its lock; readers sum a key's rows, and [`Store::fold_totals`] replaces a
//! key's rows by their sum so a key keeps a handful of rows.

use crate::{Backend, Store, StoreError};

/// The states in which a run is finished; `run_totals` counts runs in these.
pub(crate) const FINISHED_STATES: &str = "'succeeded', 'dead', 'cancelled', 'failed', 'rejected'";
/// The states of a run under way, each with a partial index of the queue.
pub(crate) const ACTIVE_STATES: &str = "'scheduled', 'available', 'running', 'awaiting_approval'";
/// The width of a `run_totals` bucket: an hour, so a day that starts at a time zone's midnight
/// (a whole or half hour away from UTC) is whole buckets and at most one partial hour.
pub(crate) const RUN_TOTALS_BUCKET_MICROS: i64 = 3_600_000_000;

/// Each total's table and the columns of its key and of its sums.
const FOLDABLE: [(&str, &str, &str); 2] = [
    (
        "ledger_totals",
        "tenant_id, month, day, agent, automation, model, kind",
        "entries, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, usage_estimated, fuel, cost",
    ),
    ("run_totals", "tenant_id, hour, state", "runs"),
];

/// Counts the runs `ids` in `run_totals` under the finished state each is in, `sign` times: +1
/// after a statement moved them into a finished state, -1 before one moves them out. Runs not in a
/// finished state count nothing, so a batch may mix them.
pub(crate) async fn count_finished(tx: &mut crate::Tx, ids: &[i64], sign: i64) -> Result<(), StoreError> {
    if ids.is_empty() {
        return Ok(());
    }
    let mut p = crate::Placeholders::for_conn(tx);
    let (n, list) = (p.next(), p.id_in("id"));
    let select = format!(
        "SELECT tenant_id, created_at - created_at % {RUN_TOTALS_BUCKET_MICROS}, state, COUNT(*) * {n} FROM jobs \
         WHERE {list} AND state IN ({FINISHED_STATES}) GROUP BY tenant_id, created_at - created_at % \
         {RUN_TOTALS_BUCKET_MICROS}, state"
    );
    // SQLite keeps a row per key; PostgreSQL appends a delta (see the module doc).
    let sql = if p.is_sqlite() {
        format!(
            "INSERT INTO run_totals (tenant_id, hour, state, runs) {select} \
             ON CONFLICT (tenant_id, hour, state) DO UPDATE SET runs = runs + excluded.runs"
        )
    } else {
        format!("INSERT INTO run_totals (tenant_id, hour, state, runs) {select}")
    };
    sqlx::query(&sql)
        .bind(sign)
        .bind(p.ids(ids.iter().copied()))
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// [`count_finished`] for runs whose tenant, creation time and state the caller has in hand (from
/// the RETURNING of the statement that moved them), without reading the runs again: the recorder
/// counts a few hundred at a time, and reading them back was one lookup a run.
pub(crate) async fn count_runs<'a>(
    tx: &mut crate::Tx,
    runs: impl IntoIterator<Item = (&'a str, i64, &'a str)>,
    sign: i64,
) -> Result<(), StoreError> {
    let mut keys: std::collections::BTreeMap<(&str, i64, &str), i64> = Default::default();
    for (tenant, created_at, state) in runs {
        if FINISHED_STATES.contains(&format!("'{state}'")) {
            let hour = created_at - created_at.rem_euclid(RUN_TOTALS_BUCKET_MICROS);
            *keys.entry((tenant, hour, state)).or_default() += sign;
        }
    }
    if keys.is_empty() {
        return Ok(());
    }
    let rows = keys
        .into_iter()
        .map(|((tenant, hour, state), n)| serde_json::json!([tenant, hour, state, n]))
        .collect();
    let mut p = crate::Placeholders::for_conn(tx);
    let select = format!(
        "SELECT r.value ->> 0, CAST(r.value ->> 1 AS BIGINT), r.value ->> 2, CAST(r.value ->> 3 AS BIGINT) FROM {}",
        p.json_rows()
    );
    // SQLite keeps a row per key; PostgreSQL appends a delta (see the module doc). (`WHERE true`
    // keeps SQLite from reading `ON CONFLICT` as a join constraint of the SELECT.)
    let sql = if p.is_sqlite() {
        format!(
            "INSERT INTO run_totals (tenant_id, hour, state, runs) {select} WHERE true \
             ON CONFLICT (tenant_id, hour, state) DO UPDATE SET runs = runs + excluded.runs"
        )
    } else {
        format!("INSERT INTO run_totals (tenant_id, hour, state, runs) {select}")
    };
    sqlx::query(&sql)
        .bind(crate::json_rows(rows))
        .execute(&mut **tx)
        .await?;
    Ok(())
}

impl Store {
    /// Folds every key with fresh deltas into one row (PostgreSQL; SQLite keeps one row per key
    /// already). Returns how many rows it replaced.
    ///
    /// Safe beside writers and other nodes folding: each statement deletes rows and inserts their
    /// sum in one step, so a reader's snapshot sees either the rows or the sum; a delta written
    /// meanwhile is not in the statement's snapshot and waits for the next fold; two nodes folding
    /// the same key each re-insert only what they deleted.
    pub async fn fold_totals(&self) -> Result<u64, StoreError> {
        if self.backend() == Backend::Sqlite {
            return Ok(0);
        }
        let mut folded = 0;
        for (table, key, sums) in FOLDABLE {
            let on = key
                .split(", ")
                .map(|c| format!("r.{c} = k.{c}"))
                .collect::<Vec<_>>()
                .join(" AND ");
            // A key whose rows cancel out (runs that left a finished state) keeps no row.
            let first = sums.split(", ").next().unwrap_or_default();
            let summed = sums
                .split(", ")
                .map(|c| format!("SUM({c})"))
                .collect::<Vec<_>>()
                .join(", ");
            let sql = format!(
                "WITH k AS (SELECT DISTINCT {key} FROM {table} WHERE fresh), \
                 gone AS (DELETE FROM {table} r USING k WHERE {on} RETURNING r.*), \
                 n AS (SELECT COUNT(*) AS rows FROM gone), \
                 put AS (INSERT INTO {table} ({key}, {sums}, fresh) SELECT {key}, {summed}, false FROM gone GROUP BY {key} \
                   HAVING SUM({first}) <> 0) \
                 SELECT rows FROM n"
            );
            let (n,): (i64,) = sqlx::query_as(&sql).fetch_one(self.pool()).await?;
            folded += n.max(0) as u64;
        }
        Ok(folded)
    }
}
