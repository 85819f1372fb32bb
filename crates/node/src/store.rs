//! The node's store: a redb database under `--data-dir` holding the blocks of the active chain
//! by height, the node's identity key and wallet seed, the peers it knows, its mempool, and
//! facts about the store (network, schema version, the faucet's asset). The wallet CLI keeps
//! one too, beside its vault: its peer's identity and chain, and its wallet's metadata.
//!
//! The chain and its UTXO set are rebuilt at start by connecting the stored blocks, so what is
//! on disk is only ever whole blocks, each change of the active chain in one transaction: a
//! kill at any moment leaves the chain as it was before or after that change, never between.
//! Rebuilding costs a validation of every block at start; a UTXO snapshot can shorten it later.

use std::fmt;
use std::path::{Path, PathBuf};

use bitcoin::consensus::{deserialize, serialize};
use bitcoin::hashes::Hash;
use bitcoin::secp256k1::{Keypair, Secp256k1, SecretKey};
use bitcoin::{Block, Transaction, Txid};
use bitmesh_core::chain::assets::AssetId;
use bitmesh_core::chain::state::Chain;
use bitmesh_core::wallet::metadata::Metadata;
use bitmesh_core::wire::{Features, PeerId, PeerRecord};
use bitmesh_core::Network;
use redb::{Database, Key, ReadOnlyTable, ReadableTable, TableDefinition, Value};

/// Height → the active chain's block there (consensus encoding).
const BLOCKS: TableDefinition<u32, &[u8]> = TableDefinition::new("blocks");
/// Height → its block hash, to find where a new active chain leaves the stored one.
const HASHES: TableDefinition<u32, &[u8]> = TableDefinition::new("hashes");
/// Facts: "network", "schema", "identity", "wallet-seed", "faucet-asset".
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
/// Peer id → features and when it was last seen (the peers the node knows, for the next run).
const PEERS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("peers");
/// Position → a mempool transaction, parents before children (for the next run).
const MEMPOOL: TableDefinition<u32, &[u8]> = TableDefinition::new("mempool");
/// "metadata" → the wallet CLI's copy of its wallet's metadata (`Metadata::encode`), which it
/// syncs with the wallet's other devices.
const WALLET: TableDefinition<&str, &[u8]> = TableDefinition::new("wallet");

const SCHEMA: u32 = 1;
const FILE: &str = "bitmesh.redb";

/// Why the store cannot be used.
#[derive(Debug)]
pub enum StoreError {
    /// The directory cannot be made or the file opened.
    Open(PathBuf, String),
    /// Another bitmesh-node uses it.
    InUse(PathBuf),
    /// It belongs to another network.
    WrongNetwork { path: PathBuf, stored: String },
    /// It was made by a newer version.
    NewerSchema { path: PathBuf, version: u32 },
    /// Its contents are damaged (redb's check, or a stored block that is not valid).
    Corrupt(PathBuf, String),
    /// Writing failed (the disk is full, or gone).
    Write(String),
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Open(path, err) => {
                write!(
                    f,
                    "cannot open the data directory {}: {err}",
                    path.display()
                )
            }
            StoreError::InUse(path) => write!(
                f,
                "{} is in use by another bitmesh-node; give this one its own --data-dir",
                path.display()
            ),
            StoreError::WrongNetwork { path, stored } => write!(
                f,
                "{} holds the {stored} network's data; use another --data-dir for this network",
                path.display()
            ),
            StoreError::NewerSchema { path, version } => write!(
                f,
                "{} was written by a newer bitmesh-node (schema {version}); upgrade this one",
                path.display()
            ),
            StoreError::Corrupt(path, err) => write!(
                f,
                "the database {} is damaged ({err}); nothing was changed. Move it away to start \
                 afresh: the chain comes back from peers",
                path.display()
            ),
            StoreError::Write(err) => write!(f, "cannot write the database: {err}"),
        }
    }
}

impl std::error::Error for StoreError {}

fn write_error(err: impl fmt::Display) -> StoreError {
    let text = err.to_string();
    if text.contains("No space left") {
        StoreError::Write(format!("the disk is full ({text})"))
    } else {
        StoreError::Write(text)
    }
}

/// The open store.
pub struct Store {
    /// None only between a failed write and a successful [`Store::reopen`].
    db: Option<Database>,
    path: PathBuf,
}

impl Store {
    /// Opens (or creates) the store in `dir` for `network`.
    pub fn open(dir: &Path, network: Network) -> Result<Store, StoreError> {
        std::fs::create_dir_all(dir)
            .map_err(|err| StoreError::Open(dir.into(), err.to_string()))?;
        let path = dir.join(FILE);
        let db = open_file(&path)?;
        let store = Store { db: Some(db), path };
        store.check_or_stamp(network)?;
        Ok(store)
    }

    /// Opens the file again after a failed write: redb refuses every write after an I/O error
    /// until it is reopened (and reopening checks it).
    pub fn reopen(&mut self) -> Result<(), StoreError> {
        self.db = None;
        self.db = Some(open_file(&self.path)?);
        Ok(())
    }

    /// `table` as it is now, in a read transaction of its own.
    fn read<K: Key + 'static, V: Value + 'static>(
        &self,
        table: TableDefinition<K, V>,
    ) -> Result<ReadOnlyTable<K, V>, StoreError> {
        let txn = self.db()?.begin_read().map_err(|err| self.corrupt(err))?;
        txn.open_table(table).map_err(|err| self.corrupt(err))
    }

    /// Replaces everything in `table` with what `fill` inserts, in one transaction.
    fn replace<K: Key + 'static, V: Value + 'static>(
        &self,
        table: TableDefinition<K, V>,
        fill: impl FnOnce(&mut redb::Table<K, V>) -> Result<(), redb::StorageError>,
    ) -> Result<(), StoreError> {
        let txn = self.db()?.begin_write().map_err(write_error)?;
        {
            let mut table = txn.open_table(table).map_err(write_error)?;
            table.retain(|_, _| false).map_err(write_error)?;
            fill(&mut table).map_err(write_error)?;
        }
        txn.commit().map_err(write_error)
    }

    fn corrupt(&self, why: impl fmt::Display) -> StoreError {
        StoreError::Corrupt(self.path.clone(), why.to_string())
    }

    fn db(&self) -> Result<&Database, StoreError> {
        self.db
            .as_ref()
            .ok_or_else(|| StoreError::Write("the database is closed after a failed write".into()))
    }
}

fn open_file(path: &Path) -> Result<Database, StoreError> {
    Database::create(path).map_err(|err| {
        let path = path.to_path_buf();
        match err {
            redb::DatabaseError::DatabaseAlreadyOpen => StoreError::InUse(path.clone()),
            redb::DatabaseError::Storage(redb::StorageError::Corrupted(why)) => {
                StoreError::Corrupt(path.clone(), why)
            }
            redb::DatabaseError::Storage(redb::StorageError::Io(err))
                if err.kind() == std::io::ErrorKind::InvalidData =>
            {
                StoreError::Corrupt(path.clone(), err.to_string())
            }
            other => StoreError::Open(path.clone(), other.to_string()),
        }
    })
}

impl Store {
    /// The store's network and schema, written when it is new.
    fn check_or_stamp(&self, network: Network) -> Result<(), StoreError> {
        let txn = self.db()?.begin_write().map_err(write_error)?;
        {
            let mut meta = txn.open_table(META).map_err(|err| self.corrupt(err))?;
            let stored = meta
                .get("network")
                .map_err(|err| self.corrupt(err))?
                .map(|value| String::from_utf8_lossy(value.value()).into_owned());
            match stored {
                Some(stored) if stored != network.name() => {
                    return Err(StoreError::WrongNetwork {
                        path: self.path.clone(),
                        stored,
                    })
                }
                Some(_) => {
                    let version = meta
                        .get("schema")
                        .map_err(|err| self.corrupt(err))?
                        .and_then(|value| value.value().try_into().ok())
                        .map(u32::from_le_bytes)
                        .unwrap_or(0);
                    if version > SCHEMA {
                        return Err(StoreError::NewerSchema {
                            path: self.path.clone(),
                            version,
                        });
                    }
                }
                None => {
                    meta.insert("network", network.name().as_bytes())
                        .map_err(write_error)?;
                    meta.insert("schema", &SCHEMA.to_le_bytes()[..])
                        .map_err(write_error)?;
                }
            }
            txn.open_table(BLOCKS).map_err(|err| self.corrupt(err))?;
            txn.open_table(HASHES).map_err(|err| self.corrupt(err))?;
            txn.open_table(PEERS).map_err(|err| self.corrupt(err))?;
            txn.open_table(MEMPOOL).map_err(|err| self.corrupt(err))?;
            txn.open_table(WALLET).map_err(|err| self.corrupt(err))?;
        }
        txn.commit().map_err(write_error)
    }

    /// The node's identity key: the stored one, or a new one (stored now).
    pub fn identity(&self) -> Result<Keypair, StoreError> {
        let secret = self.secret("identity")?;
        Ok(Keypair::from_secret_key(&Secp256k1::new(), &secret))
    }

    /// The seed of the node's own wallet (mining rewards, the faucet): the stored one, or a new
    /// one (stored now). Like the identity it is kept unencrypted, since the node runs
    /// unattended: a hot wallet for a local or test network, not for savings.
    pub fn wallet_seed(&self) -> Result<[u8; 32], StoreError> {
        self.secret("wallet-seed")
            .map(|secret| secret.secret_bytes())
    }

    /// The 32-byte secret stored at `name` in the facts, or a new random one stored now.
    fn secret(&self, name: &str) -> Result<SecretKey, StoreError> {
        let txn = self.db()?.begin_write().map_err(write_error)?;
        let secret = {
            let mut meta = txn.open_table(META).map_err(write_error)?;
            let stored = meta
                .get(name)
                .map_err(write_error)?
                .map(|value| value.value().to_vec());
            match stored {
                Some(secret) => SecretKey::from_slice(&secret).map_err(|err| {
                    StoreError::Corrupt(self.path.clone(), format!("{name}: {err}"))
                })?,
                None => {
                    let mut secret = [0u8; 32];
                    let secret = loop {
                        getrandom::getrandom(&mut secret).map_err(write_error)?;
                        if let Ok(secret) = SecretKey::from_slice(&secret) {
                            break secret;
                        }
                    };
                    meta.insert(name, &secret.secret_bytes()[..])
                        .map_err(write_error)?;
                    secret
                }
            }
        };
        txn.commit().map_err(write_error)?;
        Ok(secret)
    }

    /// The wallet metadata kept by [`Store::save_wallet_metadata`] (empty before the first).
    pub fn wallet_metadata(&self) -> Result<Metadata, StoreError> {
        let wallet = self.read(WALLET)?;
        let Some(value) = wallet.get("metadata").map_err(|err| self.corrupt(err))? else {
            return Ok(Metadata::new());
        };
        Metadata::decode(value.value()).map_err(|err| self.corrupt(format!("metadata: {err}")))
    }

    pub fn save_wallet_metadata(&self, metadata: &Metadata) -> Result<(), StoreError> {
        let txn = self.db()?.begin_write().map_err(write_error)?;
        txn.open_table(WALLET)
            .map_err(write_error)?
            .insert("metadata", &metadata.encode()[..])
            .map_err(write_error)?;
        txn.commit().map_err(write_error)
    }

    /// The faucet's demo asset and the transaction that issued it, once it did.
    pub fn faucet_asset(&self) -> Result<Option<(AssetId, Txid)>, StoreError> {
        let meta = self.read(META)?;
        let Some(value) = meta.get("faucet-asset").map_err(|err| self.corrupt(err))? else {
            return Ok(None);
        };
        let bytes: [u8; 64] = value
            .value()
            .try_into()
            .map_err(|_| self.corrupt("faucet-asset: not 64 bytes"))?;
        let (asset, txid) = bytes.split_at(32);
        Ok(Some((
            AssetId::from_byte_array(asset.try_into().expect("32 bytes")),
            Txid::from_byte_array(txid.try_into().expect("32 bytes")),
        )))
    }

    pub fn set_faucet_asset(&self, asset: AssetId, txid: Txid) -> Result<(), StoreError> {
        let mut value = asset.to_byte_array().to_vec();
        value.extend_from_slice(txid.as_byte_array());
        let txn = self.db()?.begin_write().map_err(write_error)?;
        txn.open_table(META)
            .map_err(write_error)?
            .insert("faucet-asset", &value[..])
            .map_err(write_error)?;
        txn.commit().map_err(write_error)
    }

    /// The peers the node knew when it last saved them.
    pub fn peers(&self) -> Result<Vec<PeerRecord>, StoreError> {
        let table = self.read(PEERS)?;
        let mut records = Vec::new();
        for entry in table.iter().map_err(|err| self.corrupt(err))? {
            let (peer, value) = entry.map_err(|err| self.corrupt(err))?;
            let (Ok(peer), Ok(value)) = (
                <[u8; 32]>::try_from(peer.value()),
                <[u8; 16]>::try_from(value.value()),
            ) else {
                return Err(self.corrupt("a peer record of the wrong size"));
            };
            let (features, seen) = value.split_at(8);
            records.push(PeerRecord {
                peer: PeerId(peer),
                features: Features(u64::from_le_bytes(features.try_into().expect("8"))),
                last_seen_secs: u64::from_le_bytes(seen.try_into().expect("8")),
            });
        }
        Ok(records)
    }

    /// Replaces the stored peers with `records`.
    pub fn save_peers(&self, records: &[PeerRecord]) -> Result<(), StoreError> {
        self.replace(PEERS, |table| {
            for record in records {
                let mut value = record.features.0.to_le_bytes().to_vec();
                value.extend_from_slice(&record.last_seen_secs.to_le_bytes());
                table.insert(&record.peer.0[..], &value[..])?;
            }
            Ok(())
        })
    }

    /// The mempool's transactions when it was last saved, parents first.
    pub fn mempool(&self) -> Result<Vec<Transaction>, StoreError> {
        let table = self.read(MEMPOOL)?;
        let mut txs = Vec::new();
        for entry in table.iter().map_err(|err| self.corrupt(err))? {
            let (position, bytes) = entry.map_err(|err| self.corrupt(err))?;
            let tx = deserialize(bytes.value()).map_err(|err| {
                self.corrupt(format!("mempool transaction {}: {err}", position.value()))
            })?;
            txs.push(tx);
        }
        Ok(txs)
    }

    /// Replaces the stored mempool with `txs` (parents before children).
    pub fn save_mempool<'a>(
        &self,
        txs: impl IntoIterator<Item = &'a Transaction>,
    ) -> Result<(), StoreError> {
        self.replace(MEMPOOL, |table| {
            for (position, tx) in txs.into_iter().enumerate() {
                table.insert(position as u32, &serialize(tx)[..])?;
            }
            Ok(())
        })
    }

    /// The chain of `network` rebuilt from the stored blocks, validated as they connect.
    pub fn load_chain(&self, network: Network, now_secs: u32) -> Result<Chain, StoreError> {
        let mut chain = Chain::new(network);
        let blocks = self.read(BLOCKS)?;
        for entry in blocks.iter().map_err(|err| self.corrupt(err))? {
            let (height, bytes) = entry.map_err(|err| self.corrupt(err))?;
            let height = height.value();
            let block: Block = deserialize(bytes.value())
                .map_err(|err| self.corrupt(format!("block {height}: {err}")))?;
            chain
                .accept_block(block, now_secs)
                .map_err(|err| self.corrupt(format!("block {height}: {err}")))?;
            if chain.height() != height {
                return Err(self.corrupt(format!("block {height} is not at height {height}")));
            }
        }
        Ok(chain)
    }

    /// Writes the active chain's blocks the store lacks and drops those it left (a
    /// reorganisation), in one transaction.
    pub fn save(&self, chain: &Chain) -> Result<(), StoreError> {
        let txn = self.db()?.begin_write().map_err(write_error)?;
        {
            let mut blocks = txn.open_table(BLOCKS).map_err(write_error)?;
            let mut hashes = txn.open_table(HASHES).map_err(write_error)?;
            let stored_tip = hashes
                .last()
                .map_err(write_error)?
                .map_or(0, |(height, _)| height.value());
            // The highest height where the store and the chain agree.
            let mut common = stored_tip.min(chain.height());
            while common > 0 {
                let stored = hashes.get(common).map_err(write_error)?;
                let agrees = stored.is_some_and(|hash| {
                    chain.hash_at(common).map(|h| h.to_byte_array().to_vec())
                        == Some(hash.value().to_vec())
                });
                if agrees {
                    break;
                }
                common -= 1;
            }
            for height in (common + 1)..=stored_tip {
                blocks.remove(height).map_err(write_error)?;
                hashes.remove(height).map_err(write_error)?;
            }
            for height in (common + 1)..=chain.height() {
                let hash = chain.hash_at(height).expect("on the active chain");
                let block = chain
                    .block(&hash)
                    .expect("the active chain's blocks are held");
                blocks
                    .insert(height, &serialize(block.as_ref())[..])
                    .map_err(write_error)?;
                hashes
                    .insert(height, &hash.to_byte_array()[..])
                    .map_err(write_error)?;
            }
        }
        txn.commit().map_err(write_error)
    }
}

#[cfg(test)]
mod tests {
    use bitmesh_core::testkit::{block_on, TestKey};

    use super::*;

    const NOW: u32 = 2_000_000_000;

    fn grow(chain: &mut Chain, blocks: u64, tag: u64) {
        let payout = TestKey::new(1).p2wpkh();
        for n in 0..blocks {
            let block = block_on(chain, chain.tip(), vec![], 0, &payout, tag + n);
            chain.accept_block(block, NOW).expect("valid");
        }
    }

    #[test]
    fn the_chain_and_identity_survive_a_reopen_and_a_reorganisation() {
        let dir = tempfile::tempdir().unwrap();
        let (tip, key) = {
            let store = Store::open(dir.path(), Network::Test).unwrap();
            let key = store.identity().unwrap();
            let mut chain = store.load_chain(Network::Test, NOW).unwrap();
            grow(&mut chain, 5, 0);
            store.save(&chain).unwrap();
            // A heavier branch from height 3 replaces heights 4 and 5.
            let fork = chain.hash_at(3).unwrap();
            let payout = TestKey::new(2).p2wpkh();
            let mut parent = fork;
            for n in 0..3 {
                let block = block_on(&chain, parent, vec![], 0, &payout, 100 + n);
                parent = block.block_hash();
                chain.accept_block(block, NOW).expect("valid");
            }
            assert_eq!(chain.height(), 6);
            store.save(&chain).unwrap();
            (chain.tip(), key)
        };
        let store = Store::open(dir.path(), Network::Test).unwrap();
        assert_eq!(store.identity().unwrap().secret_bytes(), key.secret_bytes());
        let chain = store.load_chain(Network::Test, NOW).unwrap();
        assert_eq!((chain.tip(), chain.height()), (tip, 6));
        assert_eq!(chain.utxo().len(), 6);
    }

    #[test]
    fn peers_mempool_wallet_seed_and_faucet_asset_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let records = vec![
            PeerRecord {
                peer: PeerId([1; 32]),
                features: Features::ALL,
                last_seen_secs: 1_700_000_000,
            },
            PeerRecord {
                peer: PeerId([2; 32]),
                features: Features(Features::ALL.0 | Features::FAUCET.0),
                last_seen_secs: 1_700_000_100,
            },
        ];
        let payout = TestKey::new(1).p2wpkh();
        let mut chain = Chain::new(Network::Test);
        let block = block_on(&chain, chain.tip(), vec![], 0, &payout, 0);
        let tx = block.txdata[0].clone();
        chain.accept_block(block, NOW).expect("valid");
        let asset = AssetId::from_byte_array([9; 32]);
        let seed = {
            let store = Store::open(dir.path(), Network::Test).unwrap();
            assert_eq!(store.peers().unwrap(), vec![]);
            assert_eq!(store.faucet_asset().unwrap(), None);
            store.save_peers(&records).unwrap();
            store.save_mempool([&tx, &tx]).unwrap();
            store.save_mempool([&tx]).unwrap();
            store.set_faucet_asset(asset, tx.compute_txid()).unwrap();
            let seed = store.wallet_seed().unwrap();
            assert_eq!(store.wallet_seed().unwrap(), seed);
            assert_ne!(seed, store.identity().unwrap().secret_bytes());
            seed
        };
        let store = Store::open(dir.path(), Network::Test).unwrap();
        let mut peers = store.peers().unwrap();
        peers.sort_by_key(|record| record.peer);
        assert_eq!(peers, records);
        assert_eq!(store.mempool().unwrap(), vec![tx.clone()]);
        assert_eq!(store.wallet_seed().unwrap(), seed);
        assert_eq!(
            store.faucet_asset().unwrap(),
            Some((asset, tx.compute_txid()))
        );
        store.save_peers(&records[1..]).unwrap();
        assert_eq!(store.peers().unwrap(), records[1..].to_vec());
    }

    #[test]
    fn another_network_or_a_damaged_file_is_refused_and_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        drop(Store::open(dir.path(), Network::Test).unwrap());
        let err = Store::open(dir.path(), Network::Local)
            .err()
            .expect("refused");
        assert!(
            matches!(err, StoreError::WrongNetwork { ref stored, .. } if stored == "test"),
            "{err}"
        );

        let damaged = tempfile::tempdir().unwrap();
        let file = damaged.path().join(FILE);
        let garbage = vec![0x5a; 64 * 1024];
        std::fs::write(&file, &garbage).unwrap();
        let err = Store::open(damaged.path(), Network::Test)
            .err()
            .expect("refused");
        assert!(err.to_string().contains("Move it away"), "{err}");
        assert_eq!(
            std::fs::read(&file).unwrap(),
            garbage,
            "nothing was changed"
        );
    }
}
