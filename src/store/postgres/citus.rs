//! The PostgreSQL store on a Citus coordinator: which tables are
//! distributed, and `db distribute`, which distributes every table of
//! cardbatch's by `org_id`, colocated, so that one org's rows live in one
//! shard group and every statement of an import stays on one worker.
//! A table without `org_id` would become a reference table; the migrator's
//! own `_sqlx_migrations` stays on the coordinator.

use sqlx::PgConnection;

use crate::store::{Placement, StoreError, TablePlacement};

/// The table every other is colocated with (the first distributed).
const ANCHOR: &str = "org_config";

/// True when the database is a Citus coordinator: the extension is
/// installed in it and this node is where distributed tables are made.
pub(super) async fn is_coordinator(connection: &mut PgConnection) -> Result<bool, StoreError> {
    let installed: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'citus')")
        .fetch_one(&mut *connection)
        .await?;
    if !installed {
        return Ok(false);
    }
    Ok(sqlx::query_scalar("SELECT citus_is_coordinator()")
        .fetch_one(&mut *connection)
        .await?)
}

/// Each table of cardbatch's (every table of the current schema but the
/// migrator's) with its placement, the anchor first, then by name.
pub(super) async fn placements(connection: &mut PgConnection) -> Result<Vec<TablePlacement>, StoreError> {
    let rows: Vec<(String, bool, Option<String>)> = sqlx::query_as(
        "SELECT c.relname::text, \
                EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'org_id' \
                        AND NOT a.attisdropped), \
                (SELECT CASE WHEN p.partmethod = 'h' THEN 'distributed' \
                             WHEN p.partmethod = 'n' AND p.repmodel = 't' THEN 'reference' END \
                   FROM pg_dist_partition p WHERE p.logicalrelid = c.oid) \
         FROM pg_class c \
         WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind IN ('r', 'p') \
           AND c.relname <> '_sqlx_migrations' \
         ORDER BY c.relname <> $1, c.relname",
    )
    .bind(ANCHOR)
    .fetch_all(&mut *connection)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(table, has_org_id, placement)| TablePlacement {
            table,
            placement: match placement.as_deref() {
                Some("distributed") => Placement::Distributed,
                Some("reference") => Placement::Reference,
                _ => Placement::Local,
            },
            wanted: if has_org_id {
                Placement::Distributed
            } else {
                Placement::Reference
            },
            changed: false,
        })
        .collect())
}

/// Distributes (or makes reference) every table still local; a table
/// already placed is left as it is. Returns every table, `changed` where
/// this call placed it.
pub(super) async fn distribute(connection: &mut PgConnection) -> Result<Vec<TablePlacement>, StoreError> {
    let mut tables = placements(connection).await?;
    for table in tables.iter_mut().filter(|t| t.placement == Placement::Local) {
        match table.wanted {
            Placement::Distributed => {
                // The anchor (placed first) starts a colocation group; the rest join it.
                let colocate_with = if table.table == ANCHOR { "default" } else { ANCHOR };
                sqlx::query("SELECT create_distributed_table($1::regclass, 'org_id', colocate_with => $2)")
                    .bind(&table.table)
                    .bind(colocate_with)
                    .execute(&mut *connection)
                    .await?;
            }
            _ => {
                sqlx::query("SELECT create_reference_table($1::regclass)")
                    .bind(&table.table)
                    .execute(&mut *connection)
                    .await?;
            }
        }
        table.placement = table.wanted;
        table.changed = true;
    }
    Ok(tables)
}
