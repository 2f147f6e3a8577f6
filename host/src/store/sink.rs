//! Where a delivery's write statements go: run at once in the caller's transaction, or
//! recorded, built and bound, to be run later by the task that holds the transaction.
//!
//! On SQLite a group of deliveries is written by one task holding the group's transaction
//! (`host/delivery/ahead.rs`). Built there, each statement (its arguments bound, its events
//! serialised) kept the connection waiting while it was built. So the host records a
//! delivery's statements on its own side once routing has decided ([`Sink::Record`]), and
//! the group's task only runs them ([`run`]). The statements are the same code either way.

use std::borrow::Cow;

use sqlx::any::AnyArguments;
use sqlx::{Any, Execute as _};
use sqlx_core::any::AnyValueKind;

type Tx<'t> = sqlx::Transaction<'t, sqlx::Any>;

/// One statement with its arguments, owned.
pub(crate) struct Statement {
    sql: String,
    arguments: AnyArguments<'static>,
}

/// Where statements go.
pub(crate) enum Sink<'s, 't> {
    /// Run each at once in this transaction.
    Run(&'s mut Tx<'t>),
    /// Keep each, in order.
    Record(&'s mut Vec<Statement>),
}

impl<'t> Sink<'_, 't> {
    /// Runs or records `query`, a statement whose result is not read.
    pub(crate) async fn execute<'q>(
        &mut self,
        mut query: sqlx::query::Query<'q, Any, AnyArguments<'q>>,
    ) -> anyhow::Result<()> {
        match self {
            Sink::Run(tx) => {
                query.execute(&mut ***tx).await?;
            }
            Sink::Record(kept) => {
                let sql = query.sql().to_string();
                let arguments = query
                    .take_arguments()
                    .map_err(|e| anyhow::anyhow!("binding a statement: {e}"))?
                    .unwrap_or_default();
                kept.push(Statement {
                    sql,
                    arguments: owned(arguments)?,
                });
            }
        }
        Ok(())
    }

    /// The transaction, for a statement whose result is read (a recording cannot give one).
    pub(crate) fn tx(&mut self) -> anyhow::Result<&mut Tx<'t>> {
        match self {
            Sink::Run(tx) => Ok(tx),
            Sink::Record(_) => anyhow::bail!("a recorded delivery read the database"),
        }
    }
}

/// Runs recorded statements in order in `tx`.
pub(crate) async fn run(tx: &mut Tx<'_>, statements: Vec<Statement>) -> anyhow::Result<()> {
    for statement in statements {
        sqlx::query_with(&statement.sql, statement.arguments)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

/// `arguments` with every borrowed value copied, so they outlive what they were bound from.
fn owned(arguments: AnyArguments<'_>) -> anyhow::Result<AnyArguments<'static>> {
    let mut out = AnyArguments::default();
    for value in arguments.values.0 {
        out.values.0.push(match value {
            AnyValueKind::Null(kind) => AnyValueKind::Null(kind),
            AnyValueKind::Bool(v) => AnyValueKind::Bool(v),
            AnyValueKind::SmallInt(v) => AnyValueKind::SmallInt(v),
            AnyValueKind::Integer(v) => AnyValueKind::Integer(v),
            AnyValueKind::BigInt(v) => AnyValueKind::BigInt(v),
            AnyValueKind::Real(v) => AnyValueKind::Real(v),
            AnyValueKind::Double(v) => AnyValueKind::Double(v),
            AnyValueKind::Text(v) => AnyValueKind::Text(Cow::Owned(v.into_owned())),
            AnyValueKind::Blob(v) => AnyValueKind::Blob(Cow::Owned(v.into_owned())),
            other => anyhow::bail!("binding a statement: a value of a kind not known: {other:?}"),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use sqlx::Row as _;

    use super::{Sink, run};
    use crate::store::Store;

    #[tokio::test]
    async fn a_recorded_statement_outlives_what_it_was_bound_from_and_runs_as_it_would_have() {
        let store = Store::open("sqlite::memory:").await.unwrap();
        sqlx::query("CREATE TABLE kept (text TEXT, number BIGINT, missing TEXT, bytes BLOB)")
            .execute(&store.pool)
            .await
            .unwrap();
        let mut statements = Vec::new();
        {
            // Borrowed for the recording only.
            let text = String::from("la fibra non va \u{0}");
            let bytes = vec![1_u8, 2, 3];
            let query = sqlx::query("INSERT INTO kept VALUES ($1, $2, $3, $4)")
                .bind(text.as_str())
                .bind(42_i64)
                .bind(None::<String>)
                .bind(bytes.as_slice());
            Sink::Record(&mut statements).execute(query).await.unwrap();
        }
        let mut tx = store.pool.begin().await.unwrap();
        // Nothing ran while recording.
        let count = sqlx::query("SELECT COUNT(*) FROM kept")
            .fetch_one(&mut *tx)
            .await
            .unwrap();
        assert_eq!(count.try_get::<i64, _>(0).unwrap(), 0);
        run(&mut tx, statements).await.unwrap();
        let row = sqlx::query("SELECT text, number, missing, bytes FROM kept")
            .fetch_one(&mut *tx)
            .await
            .unwrap();
        assert_eq!(
            row.try_get::<String, _>("text").unwrap(),
            "la fibra non va \u{0}"
        );
        assert_eq!(row.try_get::<i64, _>("number").unwrap(), 42);
        assert_eq!(row.try_get::<Option<String>, _>("missing").unwrap(), None);
        assert_eq!(row.try_get::<Vec<u8>, _>("bytes").unwrap(), [1, 2, 3]);
        // A recording cannot answer a read.
        assert!(Sink::Record(&mut Vec::new()).tx().is_err());
    }
}
