//! Retention of activation records: by age, by count **per namespace**, and
//! by a byte budget for the whole store — so that one namespace's traffic
//! never deletes another's records, and the disk the records take is
//! bounded whatever their size.
//!
//! Run by the writer's housekeeping (once a second, in the process holding
//! the data dir's lock), in one transaction:
//! 1. **age**: records older than `max-activation-age` go (through the
//!    `(namespace, start)` index: one range per namespace, empty when
//!    nothing is that old);
//! 2. **count**: a namespace holding more than `max-activations` records
//!    loses its oldest (by `start`) beyond;
//! 3. **bytes**: when the records' JSON adds up to more than `max-bytes`,
//!    records are deleted down to 90% of it. What goes is chosen *fairly*:
//!    the namespaces using the most bytes are cut down to a common level,
//!    each losing its oldest records first ([`cuts`]); a namespace using
//!    less than that level loses nothing.
//!
//! The writer keeps each namespace's [`Usage`] in memory ([`Usages`]: each
//! stored record adds to its namespace, deleting a namespace and every
//! deletion here subtract), counted by one `GROUP BY` scan at start and
//! after another process committed. So deciding which namespaces are over
//! a bound, and by how much, reads nothing; under the bounds retention runs
//! only the age query. Deletions read just the rows they delete (oldest
//! first through the index, in batches), and report what they removed
//! (`RETURNING`), which keeps the totals exact.
//!
//! SQLite does not shrink its file when rows go: freed pages are reused by
//! later records, so the file stays near its high-water mark, which the
//! bounds cap.

use crate::Sql;
use std::collections::HashMap;

use rusqlite::{Connection, TransactionBehavior, params};

use super::DbError;
use super::activations::sql_ms;
use wasmwhisk_core::config::StoreConfig;
use wasmwhisk_protocol::ids::now_epoch_ms;

/// What activation records take.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Usage {
    /// How many.
    pub records: u64,
    /// The bytes of their stored JSON.
    pub bytes: u64,
}

impl Usage {
    /// `self` less `removed`.
    pub fn less(self, removed: Usage) -> Usage {
        Usage {
            records: self.records.saturating_sub(removed.records),
            bytes: self.bytes.saturating_sub(removed.bytes),
        }
    }

    fn add(&mut self, other: Usage) {
        self.records = self.records.saturating_add(other.records);
        self.bytes = self.bytes.saturating_add(other.bytes);
    }
}

/// Each namespace's records, by namespace name; a namespace without
/// records has no entry.
pub(super) type Usages = HashMap<String, Usage>;

/// Adds `records` and `bytes` (negative: removes) to `namespace`'s usage,
/// dropping its entry when it holds no record any more.
pub(super) fn change(usages: &mut Usages, namespace: String, records: i64, bytes: i64) {
    let mut usage = usages.get(&namespace).copied().unwrap_or_default();
    usage.records = usage.records.saturating_add_signed(records);
    usage.bytes = usage.bytes.saturating_add_signed(bytes);
    if usage.records == 0 {
        usages.remove(&namespace);
    } else {
        usages.insert(namespace, usage);
    }
}

/// Counts each namespace's records and their bytes: a scan of the whole
/// table, run at start and after another process wrote.
pub(super) fn usage(conn: &Connection) -> Result<Usages, DbError> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT namespace, count(*), coalesce(sum(octet_length(record)), 0) FROM activations \
         GROUP BY namespace",
        )
        .db()?;
    let rows = stmt
        .query_map([], |row| {
            Ok((
                row.get::<_, String>(0)?,
                Usage {
                    records: u64::try_from(row.get::<_, i64>(1)?).unwrap_or(0),
                    bytes: u64::try_from(row.get::<_, i64>(2)?).unwrap_or(0),
                },
            ))
        })
        .db()?;
    rows.collect::<Result<_, _>>().db()
}

/// Runs a `DELETE … RETURNING namespace, octet_length(record)`, adds what
/// it removed to `removed` (per namespace), and returns its total.
fn delete(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
    removed: &mut Usages,
) -> Result<Usage, DbError> {
    let mut stmt = conn.prepare_cached(sql).db()?;
    let mut rows = stmt.query(params).db()?;
    let mut total = Usage::default();
    while let Some(row) = rows.next().db()? {
        let namespace: String = row.get(0).db()?;
        let one = Usage {
            records: 1,
            bytes: u64::try_from(row.get::<_, i64>(1).db()?).unwrap_or(0),
        };
        removed.entry(namespace).or_default().add(one);
        total.add(one);
    }
    Ok(total)
}

/// What `namespace` holds once `removed` is gone.
fn left(usages: &Usages, removed: &Usages, namespace: &str) -> Usage {
    let usage = usages.get(namespace).copied().unwrap_or_default();
    usage.less(removed.get(namespace).copied().unwrap_or_default())
}

/// Enforces the three bounds (see the module doc) on a store whose records
/// take `usages`, and subtracts what it deleted from `usages` once that is
/// committed; returns the total deleted.
pub(super) fn enforce(
    conn: &mut Connection,
    config: &StoreConfig,
    usages: &mut Usages,
) -> Result<Usage, DbError> {
    let age = u64::try_from(config.max_activation_age.as_millis()).unwrap_or(u64::MAX);
    let cutoff = sql_ms(now_epoch_ms().saturating_sub(age));
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .db()?;
    let mut removed = Usages::new();
    // Records of a namespace that no longer exists (deleting one deletes
    // its records) are left to the other bounds.
    delete(
        &tx,
        "DELETE FROM activations WHERE namespace IN (SELECT name FROM namespaces) \
         AND start < ?1 RETURNING namespace, octet_length(record)",
        [cutoff],
        &mut removed,
    )?;
    trim_counts(&tx, config.max_activations, usages, &mut removed)?;
    let sizes: Vec<(String, Usage)> = usages
        .keys()
        .map(|namespace| (namespace.clone(), left(usages, &removed, namespace)))
        .collect();
    let bytes = sizes
        .iter()
        .fold(0u64, |sum, s| sum.saturating_add(s.1.bytes));
    let budget = config.max_bytes.as_bytes();
    if bytes > budget {
        trim_bytes(&tx, sizes, bytes - (budget - budget / 10), &mut removed)?;
    }
    tx.commit().db()?;
    let mut total = Usage::default();
    for (namespace, gone) in removed {
        total.add(gone);
        change(
            usages,
            namespace,
            -i64::try_from(gone.records).unwrap_or(i64::MAX),
            -i64::try_from(gone.bytes).unwrap_or(i64::MAX),
        );
    }
    if total.records > 0 {
        tracing::debug!(
            records = total.records,
            bytes = total.bytes,
            "activation records past retention deleted"
        );
    }
    Ok(total)
}

/// Deletes the oldest records of every namespace holding more than `max`
/// (as `usages` less `removed` says).
fn trim_counts(
    conn: &Connection,
    max: u64,
    usages: &Usages,
    removed: &mut Usages,
) -> Result<(), DbError> {
    let over: Vec<(String, u64)> = usages
        .keys()
        .filter_map(|namespace| {
            let records = left(usages, removed, namespace).records;
            (records > max).then(|| (namespace.clone(), records - max))
        })
        .collect();
    for (namespace, excess) in over {
        delete(
            conn,
            "DELETE FROM activations WHERE rowid IN (SELECT rowid FROM activations \
             WHERE namespace = ?1 ORDER BY start, rowid LIMIT ?2) \
             RETURNING namespace, octet_length(record)",
            params![namespace, sql_ms(excess)],
            removed,
        )?;
    }
    Ok(())
}

/// Deletes, of namespace `?1`'s oldest `?3` records, the oldest that add up
/// to `?2` bytes: those with fewer than `?2` bytes before them (so the one
/// that crosses `?2` goes too, and none after it).
const DELETE_OLDEST_BYTES: &str = "DELETE FROM activations WHERE rowid IN (\
     SELECT r FROM (\
       SELECT r, sum(len) OVER (ORDER BY s, r ROWS UNBOUNDED PRECEDING) - len AS before \
       FROM (SELECT rowid AS r, start AS s, octet_length(record) AS len FROM activations \
             WHERE namespace = ?1 ORDER BY start, rowid LIMIT ?3)) \
     WHERE before < ?2) \
     RETURNING namespace, octet_length(record)";

/// Deletes at least `excess` bytes of records, fairly (see [`cuts`]), given
/// what each namespace holds (`sizes`).
fn trim_bytes(
    conn: &Connection,
    sizes: Vec<(String, Usage)>,
    excess: u64,
    removed: &mut Usages,
) -> Result<(), DbError> {
    let averages: HashMap<String, u64> = sizes
        .iter()
        .map(|(namespace, usage)| {
            let average = usage.bytes.checked_div(usage.records).unwrap_or(1);
            (namespace.clone(), average.max(1))
        })
        .collect();
    let bytes = sizes
        .into_iter()
        .map(|(n, usage)| (n, usage.bytes))
        .collect();
    for (namespace, cut) in cuts(bytes, excess) {
        // Batches of the namespace's oldest records, each sized to cover
        // what is left of the cut at the average record size seen so far
        // (and at least twice the previous batch, so an underestimate
        // costs a few statements, never one per row).
        let mut average = averages.get(&namespace).copied().unwrap_or(1);
        let mut batch = 0u64;
        let mut covered = Usage::default();
        while covered.bytes < cut {
            let missing = cut - covered.bytes;
            batch = (missing / average + 1).max(batch.saturating_mul(2));
            let got = delete(
                conn,
                DELETE_OLDEST_BYTES,
                params![namespace, sql_ms(missing), sql_ms(batch)],
                removed,
            )?;
            if got.records == 0 {
                break;
            }
            covered.add(got);
            average = (covered.bytes / covered.records).max(1);
        }
        tracing::info!(
            namespace,
            records = covered.records,
            bytes = covered.bytes,
            "activation records over the store's byte budget deleted"
        );
    }
    Ok(())
}

/// How many bytes each namespace gives up so that `excess` bytes go, given
/// each namespace's `sizes`: the largest are cut down to one common level
/// (water-filling), so the namespaces using the most lose first and a
/// namespace under the level loses nothing. The cuts add up to at least
/// `excess` (all of it, when `excess` is more than everything).
pub(super) fn cuts(mut sizes: Vec<(String, u64)>, excess: u64) -> Vec<(String, u64)> {
    if excess == 0 {
        return Vec::new();
    }
    sizes.sort_by_key(|s| std::cmp::Reverse(s.1));
    // Find k, the number of namespaces cut, and the level: the largest k
    // namespaces are cut to `level`, which is at least the (k+1)-th size.
    let mut above = 0u128; // sum of the k largest
    let mut level = 0u128;
    for (k, (_, size)) in sizes.iter().enumerate() {
        above += u128::from(*size);
        let n = k as u128 + 1;
        // The level that removes `excess` from the k+1 largest (rounded
        // down, so the cuts cover `excess`).
        let candidate = above.saturating_sub(u128::from(excess)) / n;
        let next = sizes.get(k + 1).map_or(0, |s| u128::from(s.1));
        if candidate >= next {
            level = candidate;
            break;
        }
    }
    sizes
        .into_iter()
        .filter_map(|(namespace, size)| {
            let cut = u128::from(size).saturating_sub(level);
            (cut > 0).then(|| (namespace, u64::try_from(cut).unwrap_or(u64::MAX)))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sizes(list: &[(&str, u64)]) -> Vec<(String, u64)> {
        list.iter().map(|(n, s)| (n.to_string(), *s)).collect()
    }

    fn total(cuts: &[(String, u64)]) -> u64 {
        cuts.iter().map(|c| c.1).sum()
    }

    #[test]
    fn the_largest_namespace_is_cut_first() {
        let cut = cuts(sizes(&[("a", 100), ("b", 1000), ("c", 50)]), 300);
        assert_eq!(cut, sizes(&[("b", 300)]));
    }

    #[test]
    fn large_namespaces_are_cut_to_a_common_level() {
        // b and c are cut to 250 each; a (100) keeps everything.
        let cut = cuts(sizes(&[("a", 100), ("b", 500), ("c", 400)]), 400);
        assert_eq!(cut, sizes(&[("b", 250), ("c", 150)]));
        assert_eq!(total(&cut), 400);
    }

    #[test]
    fn cuts_cover_the_excess_and_never_exceed_a_namespace() {
        for excess in [1, 7, 99, 333, 1000, 5000] {
            let input = sizes(&[("a", 10), ("b", 333), ("c", 333), ("d", 1)]);
            let cut = cuts(input.clone(), excess);
            assert!(total(&cut) >= excess.min(677), "{excess}: {cut:?}");
            for (ns, c) in &cut {
                let size = input.iter().find(|(n, _)| n == ns).map_or(0, |s| s.1);
                assert!(*c <= size, "{excess}: {cut:?}");
            }
        }
        assert!(cuts(sizes(&[("a", 10)]), 0).is_empty());
        assert!(cuts(Vec::new(), 10).is_empty());
    }
}

#[cfg(test)]
mod usage_tests {
    //! The writer's per-namespace totals against the table itself.

    use super::*;
    use crate::activations::{self, RecordRow};
    use crate::namespaces;
    use crate::test_support::{TempDb, record};
    use crate::writer::Effect;
    use wasmwhisk_core::config::ByteSize;

    /// Runs `write` in a transaction and applies its record effects to
    /// `usages`, as the writer does after the commit.
    fn write(
        conn: &mut Connection,
        usages: &mut Usages,
        write: impl FnOnce(&Connection, &mut Vec<Effect>),
    ) {
        let tx = conn.transaction().unwrap();
        let mut effects = Vec::new();
        write(&tx, &mut effects);
        tx.commit().unwrap();
        for effect in effects {
            if let Effect::Records {
                namespace,
                records,
                bytes,
            } = effect
            {
                change(usages, namespace, records, bytes);
            }
        }
    }

    fn store(conn: &mut Connection, usages: &mut Usages, ns: &str, start: u64, name: &str) {
        let mut activation = record(ns, name, start);
        if name == "big" {
            activation.response.result = Some(serde_json::json!({ "pad": "x".repeat(3000) }));
        }
        let row = RecordRow::new(&activation).unwrap();
        write(conn, usages, |tx, effects| {
            activations::insert_record(tx, &row, effects)
                .unwrap()
                .unwrap();
        });
    }

    #[test]
    fn the_totals_in_memory_match_the_table_after_writes_deletions_and_trims() {
        let tmp = TempDb::new();
        let mut conn = crate::schema::open_writer(&tmp.path()).unwrap();
        let mut usages = usage(&conn).unwrap();
        assert!(usages.is_empty());
        let now = now_epoch_ms();
        for ns in ["a", "b", "c"] {
            let name = wasmwhisk_protocol::EntityName::new(ns).unwrap();
            namespaces::create(&conn, &name, false).unwrap().unwrap();
        }
        for i in 0..40 {
            store(&mut conn, &mut usages, "a", now - 60_000 + i, "small");
            store(&mut conn, &mut usages, "b", now - 60_000 + i, "big");
        }
        for i in 0..5 {
            store(&mut conn, &mut usages, "c", now - 60_000 + i, "small");
        }
        assert_eq!(usages, usage(&conn).unwrap());

        // A record stored again (same id) replaces the old one.
        let again = record("a", "small", now - 1);
        let row = RecordRow::new(&again).unwrap();
        for _ in 0..2 {
            write(&mut conn, &mut usages, |tx, effects| {
                activations::insert_record(tx, &row, effects)
                    .unwrap()
                    .unwrap();
            });
        }
        assert_eq!(usages, usage(&conn).unwrap());

        // Under the bounds nothing goes and the totals stand.
        let loose = StoreConfig::default();
        assert_eq!(enforce(&mut conn, &loose, &mut usages).unwrap().records, 0);
        assert_eq!(usages, usage(&conn).unwrap());

        // The count bound trims `a` and `b` to 30 each, `c` keeps its 5.
        let counted = StoreConfig {
            max_activations: 30,
            ..StoreConfig::default()
        };
        let gone = enforce(&mut conn, &counted, &mut usages).unwrap();
        assert_eq!(gone.records, 11 + 10);
        assert_eq!(usages, usage(&conn).unwrap());
        assert_eq!(usages["a"].records, 30);
        assert_eq!(usages["b"].records, 30);
        assert_eq!(usages["c"].records, 5);

        // The byte budget cuts `b` (the big records) first, in batches.
        let total: u64 = usages.values().map(|u| u.bytes).sum();
        let budget = total - usages["b"].bytes / 2;
        let bounded = StoreConfig {
            max_bytes: ByteSize::from_bytes(budget),
            ..StoreConfig::default()
        };
        enforce(&mut conn, &bounded, &mut usages).unwrap();
        assert_eq!(usages, usage(&conn).unwrap());
        let now_total: u64 = usages.values().map(|u| u.bytes).sum();
        assert!(now_total <= budget - budget / 10, "{now_total} of {budget}");
        assert_eq!(usages["a"].records, 30);
        assert_eq!(usages["c"].records, 5);
        // No more than the record that crossed the cut went.
        assert!(
            now_total + usages["b"].bytes / usages["b"].records > budget - budget / 10,
            "{now_total} of {budget}"
        );

        // Deleting a namespace drops its entry.
        write(&mut conn, &mut usages, |tx, effects| {
            namespaces::delete(tx, "b", effects).unwrap().unwrap();
        });
        assert!(!usages.contains_key("b"));
        assert_eq!(usages, usage(&conn).unwrap());
    }

    #[test]
    fn the_trims_read_the_index_and_sort_nothing() {
        let tmp = TempDb::new();
        let conn = crate::schema::open_writer(&tmp.path()).unwrap();
        let trim_counts = "DELETE FROM activations WHERE rowid IN (SELECT rowid FROM activations \
             WHERE namespace = ?1 ORDER BY start, rowid LIMIT ?2)";
        for sql in [trim_counts, DELETE_OLDEST_BYTES] {
            let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
            let args: &[&dyn rusqlite::ToSql] = &[&"a", &1, &1];
            let args = args.get(..stmt.parameter_count()).unwrap();
            let plan = stmt
                .query_map(args, |r| r.get::<_, String>(3))
                .unwrap()
                .map(Result::unwrap)
                .collect::<Vec<_>>()
                .join("; ");
            assert!(plan.contains("activations_by_namespace"), "{plan}");
            assert!(!plan.contains("TEMP B-TREE"), "{plan}");
        }
    }
}
