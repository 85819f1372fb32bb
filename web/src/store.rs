//! The core's store on IndexedDB: one object store per [`Table`], one read-write transaction
//! per [`WriteBatch`].
//!
//! Keys and values are stored as `Uint8Array`s (IndexedDB orders binary keys bytewise). Inside a
//! transaction nothing is awaited but IndexedDB's own requests: the browser commits a transaction
//! as soon as control returns to it with no request pending.

use std::fmt;

use bitmesh_core::store::{Table, Write, WriteBatch, SCHEMA_VERSION};
use idb::{Database, DatabaseEvent, Factory, ObjectStoreParams, TransactionMode};
use js_sys::Uint8Array;
use wasm_bindgen::{JsCast, JsValue};

/// An open bitmesh store in this browser profile.
#[derive(Debug)]
pub struct IdbStore {
    db: Database,
}

/// Why a store operation failed.
#[derive(Debug)]
pub struct StoreError {
    operation: &'static str,
    cause: String,
}

impl StoreError {
    fn new(operation: &'static str, cause: impl fmt::Display) -> Self {
        Self {
            operation,
            cause: cause.to_string(),
        }
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IndexedDB could not {}: {}", self.operation, self.cause)
    }
}

impl std::error::Error for StoreError {}

impl IdbStore {
    /// Opens (and creates or upgrades) the database `name`.
    pub async fn open(name: &str) -> Result<IdbStore, StoreError> {
        const OPEN: &str = "open the database";
        let factory = Factory::new().map_err(|err| StoreError::new(OPEN, err))?;
        let mut request = factory
            .open(name, Some(SCHEMA_VERSION))
            .map_err(|err| StoreError::new(OPEN, err))?;
        request.on_upgrade_needed(|event| {
            // Runs inside the version-change transaction: create the tables this schema adds.
            let Ok(db) = event.database() else { return };
            let existing = db.store_names();
            for table in Table::ALL {
                if !existing.iter().any(|name| name == table.name()) {
                    // A failure here aborts the upgrade, and the open request reports it.
                    let _ = db.create_object_store(table.name(), ObjectStoreParams::new());
                }
            }
        });
        let db = request.await.map_err(|err| StoreError::new(OPEN, err))?;
        Ok(IdbStore { db })
    }

    /// Applies every write of `batch` in one read-write transaction: all or nothing.
    pub async fn apply(&self, batch: &WriteBatch) -> Result<(), StoreError> {
        const APPLY: &str = "apply a write batch";
        if batch.is_empty() {
            return Ok(());
        }
        let mut tables: Vec<&str> = batch
            .writes()
            .iter()
            .map(|write| write_table(write).name())
            .collect();
        tables.sort_unstable();
        tables.dedup();
        let tx = self
            .db
            .transaction(&tables, TransactionMode::ReadWrite)
            .map_err(|err| StoreError::new(APPLY, err))?;
        for write in batch.writes() {
            let store = tx
                .object_store(write_table(write).name())
                .map_err(|err| StoreError::new(APPLY, err))?;
            // Requests queue in the transaction; their results arrive with its completion.
            let queued = match write {
                Write::Put { key, value, .. } => {
                    store.put(&bytes(value), Some(&bytes(key))).map(drop)
                }
                Write::Delete { key, .. } => store.delete(bytes(key)).map(drop),
            };
            if let Err(err) = queued {
                let _ = tx.abort();
                return Err(StoreError::new(APPLY, err));
            }
        }
        let outcome = tx
            .commit()
            .map_err(|err| StoreError::new(APPLY, err))?
            .await
            .map_err(|err| StoreError::new(APPLY, err))?;
        if outcome.is_committed() {
            Ok(())
        } else {
            Err(StoreError::new(APPLY, "the transaction was aborted"))
        }
    }

    /// Reads the value at `key` in `table`.
    pub async fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        const GET: &str = "read a value";
        let tx = self
            .db
            .transaction(&[table.name()], TransactionMode::ReadOnly)
            .map_err(|err| StoreError::new(GET, err))?;
        let store = tx
            .object_store(table.name())
            .map_err(|err| StoreError::new(GET, err))?;
        let value = store
            .get(bytes(key))
            .map_err(|err| StoreError::new(GET, err))?
            .await
            .map_err(|err| StoreError::new(GET, err))?;
        match value {
            None => Ok(None),
            Some(value) if value.is_instance_of::<Uint8Array>() => {
                Ok(Some(Uint8Array::new(&value).to_vec()))
            }
            Some(_) => Err(StoreError::new(
                GET,
                format!("a value in `{}` is not bytes", table.name()),
            )),
        }
    }

    /// Every value of `table`, in key order.
    pub async fn values(&self, table: Table) -> Result<Vec<Vec<u8>>, StoreError> {
        const VALUES: &str = "read a table";
        let tx = self
            .db
            .transaction(&[table.name()], TransactionMode::ReadOnly)
            .map_err(|err| StoreError::new(VALUES, err))?;
        let store = tx
            .object_store(table.name())
            .map_err(|err| StoreError::new(VALUES, err))?;
        let values = store
            .get_all(None, None)
            .map_err(|err| StoreError::new(VALUES, err))?
            .await
            .map_err(|err| StoreError::new(VALUES, err))?;
        values
            .into_iter()
            .map(|value| {
                value
                    .dyn_into::<Uint8Array>()
                    .map(|bytes| bytes.to_vec())
                    .map_err(|_| {
                        StoreError::new(
                            VALUES,
                            format!("a value in `{}` is not bytes", table.name()),
                        )
                    })
            })
            .collect()
    }

    /// Closes the connection once its transactions finish.
    pub fn close(self) {
        self.db.close();
    }
}

fn write_table(write: &Write) -> Table {
    match write {
        Write::Put { table, .. } | Write::Delete { table, .. } => *table,
    }
}

fn bytes(data: &[u8]) -> JsValue {
    Uint8Array::from(data).into()
}
