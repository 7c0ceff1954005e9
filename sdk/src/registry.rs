//! The tenant's structured data: typed tables such as clients, a content calendar, an email queue
//! or KPI history, declared in the tenant's configuration and editable in the dashboard.
//!
//! ```no_run
//! # fn f() -> mission_control_sdk::Result<()> {
//! use mission_control_sdk::{json, registry::{self, Filter}};
//! let due = registry::query("content_calendar", &[Filter::eq("status", &"planned")?], 10)?;
//! for row in due {
//!     registry::update("content_calendar", &row.id, &json!({ "status": "drafted" }))?;
//! }
//! # Ok(()) }
//! ```

use crate::bindings::mission::control::registry::{self as wit, FilterOp, RegistryError};
use crate::{Error, Result, Value};

/// One stored record.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// The record's id.
    pub id: String,
    /// Its fields.
    pub data: Value,
}

/// A condition on one field.
#[derive(Debug, Clone)]
pub struct Filter(wit::Filter);

impl Filter {
    fn new(field: &str, op: FilterOp, value: &impl serde::Serialize) -> Result<Filter> {
        Ok(Filter(wit::Filter {
            field: field.to_string(),
            op,
            value: serde_json::to_string(value)?,
        }))
    }

    /// `field == value`
    pub fn eq(field: &str, value: &impl serde::Serialize) -> Result<Filter> {
        Filter::new(field, FilterOp::Eq, value)
    }

    /// `field != value`
    pub fn ne(field: &str, value: &impl serde::Serialize) -> Result<Filter> {
        Filter::new(field, FilterOp::Ne, value)
    }

    /// `field < value`
    pub fn lt(field: &str, value: &impl serde::Serialize) -> Result<Filter> {
        Filter::new(field, FilterOp::Lt, value)
    }

    /// `field <= value`
    pub fn le(field: &str, value: &impl serde::Serialize) -> Result<Filter> {
        Filter::new(field, FilterOp::Le, value)
    }

    /// `field > value`
    pub fn gt(field: &str, value: &impl serde::Serialize) -> Result<Filter> {
        Filter::new(field, FilterOp::Gt, value)
    }

    /// `field >= value`
    pub fn ge(field: &str, value: &impl serde::Serialize) -> Result<Filter> {
        Filter::new(field, FilterOp::Ge, value)
    }

    /// `field` contains the text `value`.
    pub fn contains(field: &str, value: &str) -> Result<Filter> {
        Filter::new(field, FilterOp::Contains, &value)
    }
}

fn map(e: RegistryError) -> Error {
    match e {
        RegistryError::NotGranted(m) => Error::not_granted(m),
        RegistryError::UnknownRegistry(m) | RegistryError::Invalid(m) | RegistryError::NotFound(m) => {
            Error::invalid_input(m)
        }
        RegistryError::Other(m) => Error::upstream(m),
    }
}

fn record(row: wit::Row) -> Result<Record> {
    Ok(Record {
        id: row.id,
        data: serde_json::from_str(&row.data)?,
    })
}

/// Records of `registry` matching every filter, at most `limit`, oldest first.
pub fn query(registry: &str, filters: &[Filter], limit: u32) -> Result<Vec<Record>> {
    let filters: Vec<wit::Filter> = filters.iter().map(|f| f.0.clone()).collect();
    wit::query(registry, &filters, limit)
        .map_err(map)?
        .into_iter()
        .map(record)
        .collect()
}

/// Adds a record (a JSON object) and returns it with its id.
pub fn insert(registry: &str, data: &impl serde::Serialize) -> Result<Record> {
    record(wit::insert(registry, &serde_json::to_string(data)?).map_err(map)?)
}

/// Changes the given fields of record `id`.
pub fn update(registry: &str, id: &str, data: &impl serde::Serialize) -> Result<Record> {
    record(wit::update(registry, id, &serde_json::to_string(data)?).map_err(map)?)
}
