//! Data registries: typed tables a tenant declares in its configuration (clients, a content
//! calendar, an email queue, KPI history), and the checks every row passes before it is stored,
//! whoever writes it (an agent through the `registry` import, a person through the API).
//!
//! ```yaml
//! registries:
//!   - name: clients
//!     fields:
//!       - { name: email, type: string, required: true, unique: true }
//!       - { name: company, type: string, required: true }
//!       - { name: mrr, type: number }          # string | integer | number | boolean | date | datetime
//!       - { name: since, type: date }          # date: YYYY-MM-DD; datetime: RFC 3339
//! ```

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Most fields one registry may declare.
pub const MAX_FIELDS: usize = 64;
/// Longest text a string field keeps, in bytes: a registry row is a record, not a document store.
pub const MAX_TEXT_BYTES: usize = 64 * 1024;

/// One registry as declared.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RegistrySpec {
    pub name: String,
    pub fields: Vec<FieldSpec>,
}

/// One field of a registry.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FieldSpec {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: FieldType,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub required: bool,
    /// No two rows may have the same value here.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub unique: bool,
}

/// What a field holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FieldType {
    String,
    Integer,
    Number,
    Boolean,
    /// `YYYY-MM-DD`.
    Date,
    /// RFC 3339, e.g. `2026-12-01T09:00:00Z`.
    Datetime,
}

impl FieldType {
    pub fn name(self) -> &'static str {
        match self {
            FieldType::String => "a string",
            FieldType::Integer => "an integer",
            FieldType::Number => "a number",
            FieldType::Boolean => "true or false",
            FieldType::Date => "a date (YYYY-MM-DD)",
            FieldType::Datetime => "a date and time (RFC 3339, like 2026-12-01T09:00:00Z)",
        }
    }

    /// Whether filters compare this field as a number.
    pub fn numeric(self) -> bool {
        matches!(self, FieldType::Integer | FieldType::Number)
    }

    /// Checks one value (not null) against the type.
    pub fn check(self, v: &Value) -> bool {
        match self {
            FieldType::String => v.as_str().is_some_and(|s| s.len() <= MAX_TEXT_BYTES),
            FieldType::Integer => v.as_i64().is_some(),
            FieldType::Number => v.as_f64().is_some_and(f64::is_finite),
            FieldType::Boolean => v.is_boolean(),
            FieldType::Date => v
                .as_str()
                .is_some_and(|s| s.parse::<jiff::civil::Date>().is_ok() && s.len() == 10),
            FieldType::Datetime => v.as_str().is_some_and(|s| s.parse::<jiff::Timestamp>().is_ok()),
        }
    }
}

/// A row is not what its registry declares.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct RowError(pub String);

impl RegistrySpec {
    pub fn field(&self, name: &str) -> Option<&FieldSpec> {
        self.fields.iter().find(|f| f.name == name)
    }

    fn field_names(&self) -> String {
        self.fields
            .iter()
            .map(|f| f.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Checks `data` as a whole new row, or (with `patch`) as changes to apply to `old`, and
    /// returns the row to store. `null` clears a field that is not required.
    pub fn check_row(&self, data: &Value, patch: Option<&Map<String, Value>>) -> Result<Map<String, Value>, RowError> {
        let Value::Object(given) = data else {
            return Err(RowError(format!(
                "a row of registry `{}` is a JSON object of its fields ({})",
                self.name,
                self.field_names()
            )));
        };
        for (k, v) in given {
            let Some(f) = self.field(k) else {
                return Err(RowError(format!(
                    "registry `{}` has no field `{k}` (its fields: {})",
                    self.name,
                    self.field_names()
                )));
            };
            if !v.is_null() && !f.kind.check(v) {
                return Err(RowError(format!(
                    "field `{k}` of registry `{}` must be {}, not {v}",
                    self.name,
                    f.kind.name()
                )));
            }
        }
        let mut row = patch.cloned().unwrap_or_default();
        for (k, v) in given {
            if v.is_null() {
                row.remove(k);
            } else {
                row.insert(k.clone(), v.clone());
            }
        }
        for f in self.fields.iter().filter(|f| f.required) {
            if !row.contains_key(&f.name) {
                return Err(RowError(format!(
                    "field `{}` of registry `{}` is required",
                    f.name, self.name
                )));
            }
        }
        Ok(row)
    }

    /// The text a unique field's value is compared by (JSON, so `1` and `"1"` differ).
    pub fn unique_key(v: &Value) -> String {
        v.to_string()
    }
}

/// Checks the declarations: names, at least one field, no field twice. `Err` names the field path
/// (relative to the registry) and the problem.
pub(crate) fn validate_registry(r: &RegistrySpec) -> Result<(), (String, String)> {
    if r.fields.is_empty() {
        return Err(("fields".into(), "a registry needs at least one field".into()));
    }
    if r.fields.len() > MAX_FIELDS {
        return Err((
            "fields".into(),
            format!("{} fields; a registry may have at most {MAX_FIELDS}", r.fields.len()),
        ));
    }
    let mut seen = std::collections::BTreeSet::new();
    for (i, f) in r.fields.iter().enumerate() {
        let ok = !f.name.is_empty()
            && f.name.len() <= 64
            && f.name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            && !f.name.starts_with(|c: char| c.is_ascii_digit());
        if !ok {
            return Err((
                format!("fields[{i}].name"),
                format!(
                    "`{}` is not a valid field name: use lower-case letters, digits and underscores, starting with a letter",
                    f.name
                ),
            ));
        }
        if !seen.insert(f.name.as_str()) {
            return Err((
                format!("fields[{i}].name"),
                format!("field `{}` is declared twice", f.name),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn clients() -> RegistrySpec {
        serde_yaml::from_str(
            "name: clients\nfields:\n  - { name: email, type: string, required: true, unique: true }\n  - { name: mrr, type: number }\n  - { name: seats, type: integer }\n  - { name: since, type: date }\n  - { name: active, type: boolean }\n",
        )
        .unwrap()
    }

    #[test]
    fn rows_are_checked_against_their_fields() {
        let r = clients();
        let row = r
            .check_row(&json!({"email": "a@b.c", "mrr": 12.5, "since": "2026-01-31"}), None)
            .unwrap();
        assert_eq!(row.len(), 3);
        let e = |v: Value| r.check_row(&v, None).unwrap_err().to_string();
        assert_eq!(e(json!({"mrr": 1})), "field `email` of registry `clients` is required");
        assert_eq!(
            e(json!({"email": "x", "mrr": "lots"})),
            "field `mrr` of registry `clients` must be a number, not \"lots\""
        );
        assert_eq!(
            e(json!({"email": "x", "seats": 1.5})),
            "field `seats` of registry `clients` must be an integer, not 1.5"
        );
        assert_eq!(
            e(json!({"email": "x", "since": "31/01/2026"})),
            "field `since` of registry `clients` must be a date (YYYY-MM-DD), not \"31/01/2026\""
        );
        assert_eq!(
            e(json!({"email": "x", "colour": "red"})),
            "registry `clients` has no field `colour` (its fields: email, mrr, seats, since, active)"
        );
        assert_eq!(
            e(json!(["x"])),
            "a row of registry `clients` is a JSON object of its fields (email, mrr, seats, since, active)"
        );
        // A patch keeps what it does not name and clears what it sets to null.
        let old = row;
        let new = r.check_row(&json!({"mrr": null, "active": true}), Some(&old)).unwrap();
        assert_eq!(
            Value::Object(new),
            json!({"email": "a@b.c", "since": "2026-01-31", "active": true})
        );
        assert_eq!(
            r.check_row(&json!({"email": null}), Some(&old))
                .unwrap_err()
                .to_string(),
            "field `email` of registry `clients` is required"
        );
    }
}
