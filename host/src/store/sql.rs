//! SQL helpers shared by the store's files: ids, times, batched statements.

use super::*;

/// A new row id: a UUIDv7 (time-ordered, random below the millisecond), so new rows land
/// at the right end of every id index instead of on a random page of it.
pub(super) fn new_id() -> String {
    uuid::Uuid::now_v7().simple().to_string()
}

pub(super) fn ms(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// Most values one `IN (…)` list binds; longer lists are split into several statements.
pub(super) const MAX_IN_LIST: usize = 500;

/// Most values one multi-row statement binds (SQLite allows 32,766, PostgreSQL 65,535).
pub(super) const MAX_BINDS: usize = 2_000;

/// Whether an insert may meet a row another writer stored between the caller's look-up
/// and its insert. On PostgreSQL several hosts share the store, so inserts say `ON
/// CONFLICT … DO NOTHING RETURNING …` and the rows returned tell which went in. On SQLite
/// the store's one connection is held from the look-up to the insert (both in the same
/// transaction), so nothing can come between: the insert is plain (a conflict there would
/// be a bug, and fails the transaction loudly) and every row goes in, without reading any
/// back.
pub(super) fn may_race(backend: Backend) -> bool {
    backend == Backend::Postgres
}

/// `clause` (an `ON CONFLICT … RETURNING …` tail) where inserts [`may_race`], else nothing.
pub(super) fn if_racing(backend: Backend, clause: &'static str) -> &'static str {
    if may_race(backend) { clause } else { "" }
}

/// `?, ?, …`: `count` parameters, for an `IN (…)` list.
pub(super) fn marks(count: usize) -> String {
    let mut out = String::with_capacity(count * 3);
    for n in 0..count {
        if n > 0 {
            out.push_str(", ");
        }
        out.push('?');
    }
    out
}

/// `rows` copies of a row `template` such as `(?, ?, 'open')`, comma-separated.
pub(super) fn rows(template: &str, rows: usize) -> String {
    let mut out = String::with_capacity((template.len() + 2) * rows);
    for row in 0..rows {
        if row > 0 {
            out.push_str(", ");
        }
        out.push_str(template);
    }
    out
}

/// A batched statement written with positional `?` parameters, as `backend` takes it.
///
/// SQLite gets it as written: sqlx looks up the name of every parameter of a statement
/// before binding it, and SQLite finds a numbered parameter's name by a linear scan, so a
/// statement with n `$N` parameters costs n² steps before it runs (12% of the ingest
/// profile with 1,600 parameters); anonymous `?` parameters have no name to scan for.
/// PostgreSQL only knows `$N`, so each `?` becomes the next number.
pub(super) fn positional(backend: Backend, sql: &str) -> String {
    if backend == Backend::Sqlite {
        return sql.to_string();
    }
    let mut out = String::with_capacity(sql.len() + sql.len() / 4);
    let mut n = 0usize;
    for c in sql.chars() {
        if c == '?' {
            n += 1;
            out.push('$');
            out.push_str(&n.to_string());
        } else {
            out.push(c);
        }
    }
    out
}
