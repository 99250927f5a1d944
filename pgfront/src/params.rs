//! The server's parameters, in one place: those reported to the client at
//! login (`ParameterStatus`) and those `SHOW` answers.

use crate::catalog;

/// Parameters reported at login, in order; their values are [`fixed`]'s, or
/// the session's (`session_authorization`, `application_name`).
pub(crate) const REPORTED: &[&str] = &[
    "server_version",
    "server_encoding",
    "client_encoding",
    "DateStyle",
    "TimeZone",
    "IntervalStyle",
    "integer_datetimes",
    "standard_conforming_strings",
    "is_superuser",
    "default_transaction_read_only",
    "in_hot_standby",
    "session_authorization",
    "application_name",
];

/// A parameter's value that no session changes, by its name in any case.
pub(crate) fn fixed(name: &str) -> Option<&'static str> {
    Some(match name.to_ascii_lowercase().as_str() {
        "server_version" => catalog::SERVER_VERSION,
        "server_version_num" => "150000",
        "server_encoding" | "client_encoding" => "UTF8",
        "datestyle" => "ISO, MDY",
        "timezone" => "UTC",
        "intervalstyle" => "postgres",
        "transaction_isolation" | "default_transaction_isolation" => "read committed",
        "transaction_read_only"
        | "default_transaction_read_only"
        | "standard_conforming_strings"
        | "integer_datetimes" => "on",
        "is_superuser" | "in_hot_standby" => "off",
        "search_path" => "\"$user\", public",
        "max_identifier_length" => "63",
        "lc_collate" | "lc_ctype" => "C.UTF-8",
        "extra_float_digits" => "1",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reported_parameter_has_a_value() {
        for name in REPORTED {
            assert!(fixed(name).is_some() || ["session_authorization", "application_name"].contains(name), "{name}");
        }
    }
}
