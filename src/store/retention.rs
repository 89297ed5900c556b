//! Retention of activation records: by age, by count **per namespace**, and
//! by a byte budget for the whole store — so that one namespace's traffic
//! never deletes another's records, and the disk the records take is
//! bounded whatever their size.
//!
//! Run by the writer's housekeeping (once a second, in the process holding
//! the data dir's lock), in one transaction:
//! 1. **age**: records older than `max-activation-age` go;
//! 2. **count**: a namespace holding more than `max-activations` records
//!    loses its oldest (by `start`) beyond. Only checked when the store as a
//!    whole holds more than `max-activations` (no namespace can, otherwise),
//!    through the `(namespace, start)` index;
//! 3. **bytes**: when the records' JSON adds up to more than `max-bytes`,
//!    records are deleted down to 90% of it (so the full scan this needs runs
//!    once per tenth of the budget written, not every second). What goes is
//!    chosen *fairly*: the namespaces using the most bytes are cut down to a
//!    common level, each losing its oldest records first ([`cuts`]); a
//!    namespace using less than that level loses nothing.
//!
//! The writer keeps the [`Usage`] totals in memory (each insert adds its
//! bytes), so the checks cost nothing while under the bounds. SQLite does
//! not shrink its file when rows go: freed pages are reused by later
//! records, so the file stays near its high-water mark, which the bounds
//! cap.

use rusqlite::{Connection, TransactionBehavior, params};

use super::DbError;
use super::activations::sql_ms;
use crate::config::StoreConfig;
use crate::protocol::ids::now_epoch_ms;

/// What the activation records take.
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

/// Counts the records and their bytes (a scan; at start and after another
/// process wrote).
pub(super) fn usage(conn: &Connection) -> Result<Usage, DbError> {
    let (records, bytes): (i64, i64) = conn.query_row(
        "SELECT count(*), coalesce(sum(octet_length(record)), 0) FROM activations",
        [],
        |row| Ok((row.get(0)?, row.get(1)?)),
    )?;
    Ok(Usage {
        records: u64::try_from(records).unwrap_or(0),
        bytes: u64::try_from(bytes).unwrap_or(0),
    })
}

/// Runs a `DELETE … RETURNING octet_length(record)`; what it removed.
fn delete(conn: &Connection, sql: &str, params: impl rusqlite::Params) -> Result<Usage, DbError> {
    let mut stmt = conn.prepare_cached(sql)?;
    let mut rows = stmt.query(params)?;
    let mut removed = Usage::default();
    while let Some(row) = rows.next()? {
        let bytes: i64 = row.get(0)?;
        removed.add(Usage {
            records: 1,
            bytes: u64::try_from(bytes).unwrap_or(0),
        });
    }
    Ok(removed)
}

/// Enforces the three bounds (see the module doc) on a store whose records
/// take `usage`; returns what was deleted.
pub(super) fn enforce(
    conn: &mut Connection,
    config: &StoreConfig,
    usage: Usage,
) -> Result<Usage, DbError> {
    let age = u64::try_from(config.max_activation_age.as_millis()).unwrap_or(u64::MAX);
    let cutoff = sql_ms(now_epoch_ms().saturating_sub(age));
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    // Records of a namespace that no longer exists (deleting one deletes
    // its records) are left to the other bounds.
    let mut removed = delete(
        &tx,
        "DELETE FROM activations WHERE namespace IN (SELECT name FROM namespaces) \
         AND start < ?1 RETURNING octet_length(record)",
        [cutoff],
    )?;
    if usage.less(removed).records > config.max_activations {
        removed.add(trim_counts(&tx, config.max_activations)?);
    }
    let bytes = usage.less(removed).bytes;
    let budget = config.max_bytes.as_bytes();
    if bytes > budget {
        removed.add(trim_bytes(&tx, bytes - (budget - budget / 10))?);
    }
    tx.commit()?;
    if removed.records > 0 {
        tracing::debug!(
            records = removed.records,
            bytes = removed.bytes,
            "activation records past retention deleted"
        );
    }
    Ok(removed)
}

/// Deletes the oldest records of every namespace holding more than `max`.
fn trim_counts(conn: &Connection, max: u64) -> Result<Usage, DbError> {
    let over: Vec<(String, i64)> = conn
        .prepare_cached(
            "SELECT namespace, count(*) FROM activations GROUP BY namespace HAVING count(*) > ?1",
        )?
        .query_map([sql_ms(max)], |row| Ok((row.get(0)?, row.get(1)?)))?
        .collect::<Result<_, _>>()?;
    let mut removed = Usage::default();
    for (namespace, count) in over {
        let excess = count.saturating_sub(sql_ms(max));
        removed.add(delete(
            conn,
            "DELETE FROM activations WHERE rowid IN (SELECT rowid FROM activations \
             WHERE namespace = ?1 ORDER BY start, rowid LIMIT ?2) RETURNING octet_length(record)",
            params![namespace, excess],
        )?);
    }
    Ok(removed)
}

/// Deletes at least `excess` bytes of records, fairly (see [`cuts`]).
fn trim_bytes(conn: &Connection, excess: u64) -> Result<Usage, DbError> {
    let sizes: Vec<(String, u64)> = conn
        .prepare_cached(
            "SELECT namespace, coalesce(sum(octet_length(record)), 0) FROM activations \
             GROUP BY namespace",
        )?
        .query_map([], |row| {
            Ok((
                row.get(0)?,
                u64::try_from(row.get::<_, i64>(1)?).unwrap_or(0),
            ))
        })?
        .collect::<Result<_, _>>()?;
    let mut removed = Usage::default();
    for (namespace, cut) in cuts(sizes, excess) {
        // The namespace's oldest records, until `cut` bytes are covered.
        let mut doomed = Vec::new();
        let mut covered = 0u64;
        {
            let mut stmt = conn.prepare_cached(
                "SELECT rowid, octet_length(record) FROM activations WHERE namespace = ?1 \
                 ORDER BY start, rowid",
            )?;
            let mut rows = stmt.query([&namespace])?;
            while covered < cut {
                let Some(row) = rows.next()? else { break };
                doomed.push(row.get::<_, i64>(0)?);
                covered = covered.saturating_add(u64::try_from(row.get::<_, i64>(1)?).unwrap_or(0));
            }
        }
        for rowid in doomed {
            removed.add(delete(
                conn,
                "DELETE FROM activations WHERE rowid = ?1 RETURNING octet_length(record)",
                [rowid],
            )?);
        }
        tracing::info!(
            namespace,
            bytes = covered,
            "activation records over the store's byte budget deleted"
        );
    }
    Ok(removed)
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
