//! Data registries: the tenant's declared tables and their rows. Every row is checked against its
//! registry's fields ([`RegistrySpec::check_row`]) and unique fields are kept unique by the
//! `registry_unique` table's primary key, in the transaction that writes the row. Queries filter
//! inside the database on the JSON of each row, typed by the field (numbers compare as numbers).

use mc_config::{FieldType, RegistrySpec};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::{Backend, StoreError, TenantScope, Tx, now_micros};

/// Most rows one page or one query returns.
pub const MAX_ROWS_PAGE: u32 = 1_000;

/// A stored row.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RegistryRow {
    pub id: i64,
    pub data: Map<String, Value>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// How a filter compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FilterOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    /// The field's text contains the value.
    Contains,
}

impl FilterOp {
    pub fn parse(s: &str) -> Option<FilterOp> {
        Some(match s {
            "eq" => FilterOp::Eq,
            "ne" => FilterOp::Ne,
            "lt" => FilterOp::Lt,
            "le" => FilterOp::Le,
            "gt" => FilterOp::Gt,
            "ge" => FilterOp::Ge,
            "contains" => FilterOp::Contains,
            _ => return None,
        })
    }

    fn sql(self) -> &'static str {
        match self {
            FilterOp::Eq => "=",
            FilterOp::Ne => "<>",
            FilterOp::Lt => "<",
            FilterOp::Le => "<=",
            FilterOp::Gt => ">",
            FilterOp::Ge => ">=",
            FilterOp::Contains => "",
        }
    }
}

/// One condition on a field. Rows without the field match no condition on it.
#[derive(Debug, Clone, PartialEq)]
pub struct RowFilter {
    pub field: String,
    pub op: FilterOp,
    pub value: Value,
}

/// Why a registry operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("{0}")]
    UnknownRegistry(String),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    NotFound(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for RegistryError {
    fn from(e: sqlx::Error) -> RegistryError {
        RegistryError::Store(e.into())
    }
}

/// A bound value of a filter.
enum Bound {
    Text(String),
    Int(i64),
    Real(f64),
}

/// A registry's declaration from its stored fields.
fn spec(name: &str, fields: &str) -> Result<RegistrySpec, StoreError> {
    Ok(RegistrySpec {
        name: name.to_string(),
        fields: serde_json::from_str(fields).map_err(|e| StoreError::Corrupt(format!("registry {name}: {e}")))?,
    })
}

fn parse_row(id: i64, data: &str, created_at: i64, updated_at: i64) -> Result<RegistryRow, StoreError> {
    let data = serde_json::from_str(data).map_err(|e| StoreError::Corrupt(format!("registry row {id}: {e}")))?;
    Ok(RegistryRow {
        id,
        data,
        created_at,
        updated_at,
    })
}

impl TenantScope<'_> {
    /// The tenant's registries, by name.
    pub async fn registries(&self) -> Result<Vec<RegistrySpec>, StoreError> {
        let rows: Vec<(String, String)> =
            sqlx::query_as("SELECT name, fields FROM registries WHERE tenant_id = $1 ORDER BY name")
                .bind(self.id())
                .fetch_all(self.store().pool())
                .await?;
        rows.into_iter().map(|(name, fields)| spec(&name, &fields)).collect()
    }

    /// One registry's declaration, or the error naming the registries there are.
    pub async fn registry(&self, name: &str) -> Result<RegistrySpec, RegistryError> {
        let row: Option<(String,)> = sqlx::query_as("SELECT fields FROM registries WHERE tenant_id = $1 AND name = $2")
            .bind(self.id())
            .bind(name)
            .fetch_optional(self.store().pool())
            .await?;
        match row {
            Some((fields,)) => Ok(spec(name, &fields)?),
            None => Err(self.unknown(name).await),
        }
    }

    /// The error for a registry the tenant does not have, naming those it has.
    async fn unknown(&self, name: &str) -> RegistryError {
        let names: Vec<String> = match self.registries().await {
            Ok(all) => all.into_iter().map(|r| r.name).collect(),
            Err(e) => return e.into(),
        };
        let list = if names.is_empty() {
            "none".to_string()
        } else {
            names.join(", ")
        };
        RegistryError::UnknownRegistry(format!(
            "tenant `{}` has no registry `{name}` (its registries: {list})",
            self.id()
        ))
    }

    /// Rows of `registry` matching every filter, oldest first, after row `after`, at most `limit`.
    pub async fn registry_rows(
        &self,
        registry: &str,
        filters: &[RowFilter],
        after: Option<i64>,
        limit: u32,
    ) -> Result<Vec<RegistryRow>, RegistryError> {
        let spec = self.registry(registry).await?;
        let sqlite = self.store().backend() == Backend::Sqlite;
        let mut p = crate::Placeholders::new(sqlite);
        let (t, r, a) = (p.next(), p.next(), p.next());
        let mut sql = format!(
            "SELECT id, data, created_at, updated_at FROM registry_rows WHERE tenant_id = {t} AND registry = {r} AND id > {a}"
        );
        let mut binds = Vec::new();
        for f in filters {
            let field = spec.field(&f.field).ok_or_else(|| {
                RegistryError::Invalid(format!("registry `{registry}` has no field `{}` to filter on", f.field))
            })?;
            // Field names are checked identifiers (letters, digits, underscores): safe in the text.
            let text = if sqlite {
                format!("json_extract(data, '$.{}')", field.name)
            } else {
                format!("(CAST(data AS jsonb) ->> '{}')", field.name)
            };
            let wrong = || {
                RegistryError::Invalid(format!(
                    "a filter on `{}` compares with {}, not {}",
                    field.name,
                    field.kind.name(),
                    f.value
                ))
            };
            let (expr, bound) = match (field.kind, f.op) {
                (FieldType::Boolean, FilterOp::Eq | FilterOp::Ne) => {
                    let b = f.value.as_bool().ok_or_else(wrong)?;
                    if sqlite {
                        (text, Bound::Int(i64::from(b)))
                    } else {
                        (text, Bound::Text(b.to_string()))
                    }
                }
                (FieldType::Boolean, _) => {
                    return Err(RegistryError::Invalid(format!(
                        "`{}` is true or false: filter it with eq or ne",
                        field.name
                    )));
                }
                (k, FilterOp::Contains) if k != FieldType::String => {
                    return Err(RegistryError::Invalid(format!(
                        "`contains` works on text; `{}` is {}",
                        field.name,
                        k.name()
                    )));
                }
                (k, _) if k.numeric() => {
                    let n = f.value.as_f64().ok_or_else(wrong)?;
                    let cast = if sqlite { "REAL" } else { "DOUBLE PRECISION" };
                    (format!("CAST({text} AS {cast})"), Bound::Real(n))
                }
                _ => (text, Bound::Text(f.value.as_str().ok_or_else(wrong)?.to_string())),
            };
            let ph = p.next();
            if f.op == FilterOp::Contains {
                let pos = if sqlite { "instr" } else { "strpos" };
                sql.push_str(&format!(" AND {pos}({expr}, {ph}) > 0"));
            } else {
                sql.push_str(&format!(" AND {expr} {} {ph}", f.op.sql()));
            }
            binds.push(bound);
        }
        let l = p.next();
        sql.push_str(&format!(" ORDER BY id LIMIT {l}"));
        let mut q = sqlx::query_as::<_, (i64, String, i64, i64)>(&sql)
            .bind(self.id())
            .bind(registry)
            .bind(after.unwrap_or(0));
        for b in binds {
            q = match b {
                Bound::Text(s) => q.bind(s),
                Bound::Int(i) => q.bind(i),
                Bound::Real(x) => q.bind(x),
            };
        }
        let rows = q
            .bind(i64::from(limit.clamp(1, MAX_ROWS_PAGE)))
            .fetch_all(self.store().pool())
            .await?;
        Ok(rows
            .into_iter()
            .map(|(id, d, c, u)| parse_row(id, &d, c, u))
            .collect::<Result<_, _>>()?)
    }

    /// One row.
    pub async fn registry_row(&self, registry: &str, id: i64) -> Result<RegistryRow, RegistryError> {
        self.registry(registry).await?;
        let row: Option<(i64, String, i64, i64)> = sqlx::query_as(
            "SELECT id, data, created_at, updated_at FROM registry_rows WHERE tenant_id = $1 AND registry = $2 AND id = $3",
        )
        .bind(self.id())
        .bind(registry)
        .bind(id)
        .fetch_optional(self.store().pool())
        .await?;
        let (id, d, c, u) =
            row.ok_or_else(|| RegistryError::NotFound(format!("registry `{registry}` has no row {id}")))?;
        Ok(parse_row(id, &d, c, u)?)
    }

    /// Checks and adds a row; returns it with its new id.
    pub async fn registry_insert(&self, registry: &str, data: &Value) -> Result<RegistryRow, RegistryError> {
        let mut tx = self.store().write_tx().await?;
        let row = self.insert_row(&mut tx, registry, data).await?;
        tx.commit().await?;
        Ok(row)
    }

    /// [`TenantScope::registry_insert`] inside `tx` (an approval delivers its output this way).
    pub(crate) async fn insert_row(
        &self,
        tx: &mut Tx,
        registry: &str,
        data: &Value,
    ) -> Result<RegistryRow, RegistryError> {
        let spec = self.locked_spec(tx, registry).await?;
        let row = spec.check_row(data, None).map_err(|e| RegistryError::Invalid(e.0))?;
        let (id,): (i64,) =
            sqlx::query_as("SELECT COALESCE(MAX(id), 0) + 1 FROM registry_rows WHERE tenant_id = $1 AND registry = $2")
                .bind(self.id())
                .bind(registry)
                .fetch_one(&mut **tx)
                .await?;
        let now = now_micros();
        let text = Value::Object(row.clone()).to_string();
        sqlx::query(
            "INSERT INTO registry_rows (tenant_id, registry, id, data, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $5)",
        )
        .bind(self.id())
        .bind(registry)
        .bind(id)
        .bind(&text)
        .bind(now)
        .execute(&mut **tx)
        .await?;
        self.claim_unique(tx, &spec, id, &row, None).await?;
        Ok(RegistryRow {
            id,
            data: row,
            created_at: now,
            updated_at: now,
        })
    }

    /// Changes the fields `patch` names (null clears one) of row `id`; returns the row.
    pub async fn registry_update(&self, registry: &str, id: i64, patch: &Value) -> Result<RegistryRow, RegistryError> {
        let mut tx = self.store().write_tx().await?;
        let spec = self.locked_spec(&mut tx, registry).await?;
        let old: Option<(String, i64)> = sqlx::query_as(
            "SELECT data, created_at FROM registry_rows WHERE tenant_id = $1 AND registry = $2 AND id = $3",
        )
        .bind(self.id())
        .bind(registry)
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        let (old, created_at) =
            old.ok_or_else(|| RegistryError::NotFound(format!("registry `{registry}` has no row {id}")))?;
        let old = parse_row(id, &old, created_at, 0)?.data;
        let row = spec
            .check_row(patch, Some(&old))
            .map_err(|e| RegistryError::Invalid(e.0))?;
        let now = now_micros();
        sqlx::query(
            "UPDATE registry_rows SET data = $4, updated_at = $5 WHERE tenant_id = $1 AND registry = $2 AND id = $3",
        )
        .bind(self.id())
        .bind(registry)
        .bind(id)
        .bind(Value::Object(row.clone()).to_string())
        .bind(now)
        .execute(&mut *tx)
        .await?;
        self.claim_unique(&mut tx, &spec, id, &row, Some(&old)).await?;
        tx.commit().await?;
        Ok(RegistryRow {
            id,
            data: row,
            created_at,
            updated_at: now,
        })
    }

    /// Deletes row `id`.
    pub async fn registry_delete(&self, registry: &str, id: i64) -> Result<(), RegistryError> {
        let mut tx = self.store().write_tx().await?;
        self.locked_spec(&mut tx, registry).await?;
        let n = sqlx::query("DELETE FROM registry_rows WHERE tenant_id = $1 AND registry = $2 AND id = $3")
            .bind(self.id())
            .bind(registry)
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if n == 0 {
            return Err(RegistryError::NotFound(format!(
                "registry `{registry}` has no row {id}"
            )));
        }
        sqlx::query("DELETE FROM registry_unique WHERE tenant_id = $1 AND registry = $2 AND row_id = $3")
            .bind(self.id())
            .bind(registry)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The registry's declaration, its row locked for this transaction: writes to one registry
    /// take their row ids one at a time.
    async fn locked_spec(&self, tx: &mut Tx, registry: &str) -> Result<RegistrySpec, RegistryError> {
        let row: Option<(String,)> = sqlx::query_as(&format!(
            "SELECT fields FROM registries WHERE tenant_id = $1 AND name = $2{}",
            self.store().for_update()
        ))
        .bind(self.id())
        .bind(registry)
        .fetch_optional(&mut **tx)
        .await?;
        match row {
            Some((fields,)) => Ok(spec(registry, &fields)?),
            None => Err(self.unknown(registry).await),
        }
    }

    /// Records row `id`'s values of unique fields (dropping those `old` had), refusing a value
    /// another row holds.
    async fn claim_unique(
        &self,
        tx: &mut Tx,
        spec: &RegistrySpec,
        id: i64,
        row: &Map<String, Value>,
        old: Option<&Map<String, Value>>,
    ) -> Result<(), RegistryError> {
        for f in spec.fields.iter().filter(|f| f.unique) {
            let before = old.and_then(|o| o.get(&f.name));
            let now = row.get(&f.name);
            if before == now {
                continue;
            }
            if let Some(v) = before {
                sqlx::query(
                    "DELETE FROM registry_unique WHERE tenant_id = $1 AND registry = $2 AND field = $3 AND value = $4",
                )
                .bind(self.id())
                .bind(&spec.name)
                .bind(&f.name)
                .bind(RegistrySpec::unique_key(v))
                .execute(&mut **tx)
                .await?;
            }
            let Some(v) = now else { continue };
            let key = RegistrySpec::unique_key(v);
            let taken = sqlx::query(
                "INSERT INTO registry_unique (tenant_id, registry, field, value, row_id) VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (tenant_id, registry, field, value) DO NOTHING",
            )
            .bind(self.id())
            .bind(&spec.name)
            .bind(&f.name)
            .bind(&key)
            .bind(id)
            .execute(&mut **tx)
            .await?
            .rows_affected()
                == 0;
            if taken {
                let (holder,): (i64,) = sqlx::query_as(
                    "SELECT row_id FROM registry_unique WHERE tenant_id = $1 AND registry = $2 AND field = $3 AND value = $4",
                )
                .bind(self.id())
                .bind(&spec.name)
                .bind(&f.name)
                .bind(&key)
                .fetch_one(&mut **tx)
                .await?;
                return Err(RegistryError::Invalid(format!(
                    "field `{}` of registry `{}` is unique, and row {holder} has {v} already",
                    f.name, spec.name
                )));
            }
        }
        Ok(())
    }
}

/// Writes the tenant's registry declarations inside an apply: new and changed ones are stored;
/// one that is gone is dropped only when it has no rows. Each is reported in `changes`.
pub(crate) async fn apply_registries(
    tx: &mut Tx,
    tenant: &str,
    specs: &[RegistrySpec],
    changes: &mut Vec<crate::Change>,
) -> Result<(), crate::AccessError> {
    use crate::{Change, ChangeKind};
    let old: Vec<(String, String)> = sqlx::query_as("SELECT name, fields FROM registries WHERE tenant_id = $1")
        .bind(tenant)
        .fetch_all(&mut **tx)
        .await
        .map_err(StoreError::from)?;
    for (name, _) in &old {
        if specs.iter().any(|s| &s.name == name) {
            continue;
        }
        let (rows,): (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM registry_rows WHERE tenant_id = $1 AND registry = $2")
                .bind(tenant)
                .bind(name)
                .fetch_one(&mut **tx)
                .await
                .map_err(StoreError::from)?;
        if rows > 0 {
            return Err(crate::AccessError::Invalid(format!(
                "registry `{name}` has {rows} rows, so it cannot be removed from the configuration: delete its rows first"
            )));
        }
        sqlx::query("DELETE FROM registries WHERE tenant_id = $1 AND name = $2")
            .bind(tenant)
            .bind(name)
            .execute(&mut **tx)
            .await
            .map_err(StoreError::from)?;
        changes.push(Change {
            kind: ChangeKind::Deleted,
            object: "registry",
            name: name.clone(),
            fields: vec![],
        });
    }
    for s in specs {
        let fields = serde_json::to_string(&s.fields).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let before = old.iter().find(|(n, _)| n == &s.name).map(|(_, f)| f.as_str());
        let kind = match before {
            None => ChangeKind::Created,
            Some(f) if f == fields => ChangeKind::Unchanged,
            Some(_) => ChangeKind::Updated,
        };
        if kind != ChangeKind::Unchanged {
            sqlx::query(
                "INSERT INTO registries (tenant_id, name, fields, updated_at) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (tenant_id, name) DO UPDATE SET fields = excluded.fields, updated_at = excluded.updated_at",
            )
            .bind(tenant)
            .bind(&s.name)
            .bind(&fields)
            .bind(now_micros())
            .execute(&mut **tx)
            .await
            .map_err(StoreError::from)?;
        }
        changes.push(Change {
            kind,
            object: "registry",
            name: s.name.clone(),
            fields: if kind == ChangeKind::Updated {
                vec!["fields".into()]
            } else {
                vec![]
            },
        });
    }
    Ok(())
}
