//! A small typed value used to bind the same column list on either backend,
//! so each write is written once and runs on SQLite and PostgreSQL alike.

use chrono::{DateTime, NaiveDate, Utc};

/// One bound value. Integers are always 64-bit (BIGINT / INTEGER).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    Text(Option<String>),
    Int(Option<i64>),
    Time(Option<DateTime<Utc>>),
    Date(Option<NaiveDate>),
    Bool(bool),
    Bytes(Vec<u8>),
}

impl From<String> for Value {
    fn from(v: String) -> Self {
        Self::Text(Some(v))
    }
}
impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Self::Text(Some(v.to_owned()))
    }
}
impl From<Option<String>> for Value {
    fn from(v: Option<String>) -> Self {
        Self::Text(v)
    }
}
impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Self::Int(Some(v))
    }
}
impl From<Option<i64>> for Value {
    fn from(v: Option<i64>) -> Self {
        Self::Int(v)
    }
}
impl From<DateTime<Utc>> for Value {
    fn from(v: DateTime<Utc>) -> Self {
        Self::Time(Some(v))
    }
}
impl From<Option<DateTime<Utc>>> for Value {
    fn from(v: Option<DateTime<Utc>>) -> Self {
        Self::Time(v)
    }
}
impl From<NaiveDate> for Value {
    fn from(v: NaiveDate) -> Self {
        Self::Date(Some(v))
    }
}
impl From<Option<NaiveDate>> for Value {
    fn from(v: Option<NaiveDate>) -> Self {
        Self::Date(v)
    }
}
impl From<bool> for Value {
    fn from(v: bool) -> Self {
        Self::Bool(v)
    }
}
impl From<Vec<u8>> for Value {
    fn from(v: Vec<u8>) -> Self {
        Self::Bytes(v)
    }
}

/// Binds every value of a slice onto a query, in order. A macro, not a
/// function, so that it expands once per backend with that backend's types.
macro_rules! bind_values {
    ($query:expr, $values:expr) => {{
        let mut query = $query;
        for value in $values {
            query = match value {
                $crate::value::Value::Text(v) => query.bind(v.clone()),
                $crate::value::Value::Int(v) => query.bind(*v),
                $crate::value::Value::Time(v) => query.bind(*v),
                $crate::value::Value::Date(v) => query.bind(*v),
                $crate::value::Value::Bool(v) => query.bind(*v),
                $crate::value::Value::Bytes(v) => query.bind(v.clone()),
            };
        }
        query
    }};
}
pub(crate) use bind_values;
