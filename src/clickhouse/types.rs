//! What each server generation calls a type: the one place the row layer's column types
//! ([`ColumnType`]) and placeholder types ([`Ty`]) become ClickHouse DDL and SQL.

use crate::adjust::catalog::Ty;
use crate::row::{Column, ColumnType};

/// The ClickHouse server generation a statement is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum Profile {
    /// ClickHouse 18.16 (Debian's package; no Map, DateTime64, codecs, TTL or skip indexes).
    Legacy,
    /// Current ClickHouse (tested against 26.x).
    Modern,
}

impl Profile {
    /// The profile for a `SELECT version()` answer: anything before 20.x is legacy.
    pub fn for_version(version: &str) -> Profile {
        let major: u32 = version
            .split('.')
            .next()
            .and_then(|m| m.parse().ok())
            .unwrap_or(0);
        if major >= 20 {
            Profile::Modern
        } else {
            Profile::Legacy
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Profile::Legacy => "legacy",
            Profile::Modern => "modern",
        }
    }
}

/// A column's type on a server of `profile`.
pub fn column_type(c: &Column, profile: Profile) -> String {
    match &c.ty {
        ColumnType::Placeholder(ty) => placeholder_type(*ty, profile).to_string(),
        ColumnType::Sql(sql) => server_types((*sql).to_string(), profile),
        ColumnType::Pairs => "Nested(key String, value String)".to_string(),
    }
}

/// A placeholder type's column type on a server of `profile`.
pub fn placeholder_type(ty: Ty, profile: Profile) -> &'static str {
    match (ty, profile) {
        (Ty::Str | Ty::Json | Ty::Params, _) => "String",
        (Ty::LowCard, Profile::Modern) => "LowCardinality(String)",
        (Ty::LowCard, Profile::Legacy) => "String",
        (Ty::Time, _) => "Nullable(DateTime('UTC'))",
        (Ty::TimeMs, Profile::Legacy) => "Nullable(Int64)",
        (Ty::TimeMs, Profile::Modern) => "Nullable(DateTime64(3, 'UTC'))",
        (Ty::Flag, _) => "Nullable(UInt8)",
        (Ty::Int, _) => "Nullable(Int64)",
        (Ty::Float, _) => "Nullable(Float64)",
    }
}

/// The SQL that turns the cold text `text` (an SQL expression) into `ty`, for the ALIAS (or,
/// once promoted, DEFAULT) column of a cold placeholder. Inverse of the row encoder's cold text.
pub fn from_text_sql(ty: Ty, text: &str, profile: Profile) -> String {
    match (ty, profile) {
        (Ty::Str | Ty::LowCard | Ty::Json | Ty::Params, _) => text.to_string(),
        (Ty::Time, _) => format!("toDateTime(toUInt32OrNull({text}), 'UTC')"),
        (Ty::TimeMs, Profile::Legacy) | (Ty::Int, _) => format!("toInt64OrNull({text})"),
        (Ty::TimeMs, Profile::Modern) => {
            format!("fromUnixTimestamp64Milli(toInt64OrNull({text}), 'UTC')")
        }
        (Ty::Flag, _) => format!("toUInt8OrNull({text})"),
        (Ty::Float, _) => format!("toFloat64OrNull({text})"),
    }
}

/// The SQL that turns a typed column `column` back into cold text (for moving a table of the
/// first layout, where every placeholder had its own column). `''` means not sent.
pub fn to_text_sql(ty: Ty, column: &str, profile: Profile) -> String {
    match (ty, profile) {
        (Ty::Str | Ty::LowCard | Ty::Json | Ty::Params, _) => format!("toString({column})"),
        (Ty::Time, _) => format!("ifNull(toString(toUInt32({column})), '')"),
        (Ty::TimeMs, Profile::Modern) => {
            format!("ifNull(toString(toUnixTimestamp64Milli({column})), '')")
        }
        (Ty::TimeMs, Profile::Legacy) | (Ty::Flag | Ty::Int | Ty::Float, _) => {
            format!("ifNull(toString({column}), '')")
        }
    }
}

/// A string literal for ClickHouse SQL: the one quoting rule of every statement the sink builds.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// Quoted string literals, comma-separated (`'a', 'b'`).
pub fn quote_list<S: AsRef<str>>(items: &[S]) -> String {
    items
        .iter()
        .map(|s| quote(s.as_ref()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The DDL's types as a server of `profile` takes them. The legacy profile (ClickHouse 18.16)
/// declares `T` where modern servers have `LowCardinality(T)`: there the type is experimental,
/// doubles the server's CPU per inserted row (9.7 → 5.3 µs in `scripts/bench-layouts.sh` with
/// plain `String`), and cannot be created by queued `ON CLUSTER` DDL, which runs with the
/// servers' own settings. The RowBinary of both is the same, so rows and the write-ahead log do
/// not depend on it, and a table created earlier with `LowCardinality` keeps working.
pub fn server_types(sql: String, profile: Profile) -> String {
    if profile != Profile::Legacy {
        return sql;
    }
    const LC: &str = "LowCardinality(";
    let mut out = String::with_capacity(sql.len());
    let mut rest = sql.as_str();
    // Closing parentheses to drop: the depth at which each LowCardinality( opened.
    let mut open: Vec<usize> = Vec::new();
    let mut depth = 0usize;
    while !rest.is_empty() {
        if rest.starts_with(LC) {
            open.push(depth);
            depth += 1;
            rest = &rest[LC.len()..];
            continue;
        }
        let ch = rest.chars().next().expect("not empty");
        match ch {
            '(' => depth += 1,
            ')' => {
                depth = depth.saturating_sub(1);
                if open.last() == Some(&depth) {
                    open.pop();
                    rest = &rest[1..];
                    continue;
                }
            }
            _ => {}
        }
        out.push(ch);
        rest = &rest[ch.len_utf8()..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profiles_from_versions() {
        assert_eq!(Profile::for_version("18.16.1"), Profile::Legacy);
        assert_eq!(Profile::for_version("26.9.1.1"), Profile::Modern);
        assert_eq!(Profile::for_version("garbage"), Profile::Legacy);
    }

    #[test]
    fn quoting_escapes_quotes_and_backslashes() {
        assert_eq!(quote("it's"), "'it\\'s'");
        assert_eq!(quote("a\\b"), "'a\\\\b'");
        assert_eq!(quote_list(&["a", "b"]), "'a', 'b'");
    }
}
