//! The storage model: named key-value tables and atomic write batches.
//!
//! The core never touches a database. Its state machines produce [`WriteBatch`]es and consume
//! data the driver loaded; the browser applies a batch in one IndexedDB read-write transaction,
//! the native node in one embedded-database transaction. A batch is applied whole or not at all.

/// A named key-value table. Keys and values are bytes; their encodings belong to the module
/// that owns the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Table(&'static str);

impl Table {
    /// Facts about the store itself (schema version, network).
    pub const META: Table = Table("meta");

    /// Every table, in the order a driver creates them.
    pub const ALL: [Table; 1] = [Table::META];

    /// The table's name, as drivers name it in their database.
    pub fn name(self) -> &'static str {
        self.0
    }
}

/// The version of the schema the tables above form. A driver that finds an older version
/// upgrades the store before use.
pub const SCHEMA_VERSION: u32 = 1;

/// One change to one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Write {
    /// Set `key` in `table` to `value`.
    Put {
        table: Table,
        key: Vec<u8>,
        value: Vec<u8>,
    },
    /// Remove `key` from `table`, if present.
    Delete { table: Table, key: Vec<u8> },
}

/// Changes that must be applied together, in order, or not at all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteBatch {
    writes: Vec<Write>,
}

impl WriteBatch {
    /// An empty batch.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a put of `value` at `key` in `table`.
    pub fn put(&mut self, table: Table, key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) {
        self.writes.push(Write::Put {
            table,
            key: key.into(),
            value: value.into(),
        });
    }

    /// Adds a delete of `key` in `table`.
    pub fn delete(&mut self, table: Table, key: impl Into<Vec<u8>>) {
        self.writes.push(Write::Delete {
            table,
            key: key.into(),
        });
    }

    /// Appends the writes of `other` after this batch's own.
    pub fn merge(&mut self, other: WriteBatch) {
        self.writes.extend(other.writes);
    }

    /// Whether the batch changes nothing.
    pub fn is_empty(&self) -> bool {
        self.writes.is_empty()
    }

    /// The writes, in the order they must be applied.
    pub fn writes(&self) -> &[Write] {
        &self.writes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_keeps_order() {
        let mut first = WriteBatch::new();
        first.put(Table::META, b"a".to_vec(), b"1".to_vec());
        let mut second = WriteBatch::new();
        second.delete(Table::META, b"a".to_vec());
        first.merge(second);
        assert_eq!(first.writes().len(), 2);
        assert!(matches!(first.writes()[1], Write::Delete { .. }));
        assert!(!first.is_empty());
        assert!(WriteBatch::new().is_empty());
    }
}
