//! The asset layer: issuing and moving assets with one OP_RETURN record per transaction.
//!
//! The record's encoding is specified in `docs/adr/0002-asset-encoding.md`. In short: an output
//! `OP_RETURN <push>` whose push starts with `"BMA"` and a version byte is an asset record; it
//! either issues a new asset (ticker, decimals, fixed supply, receiving output) or allocates,
//! per asset, amounts to outputs. Every asset unit on the inputs must be allocated to spendable
//! outputs exactly: nothing is created (but by issuance) and nothing is silently burnt.

use core::fmt;
use std::collections::BTreeMap;

use bitcoin::hashes::Hash;
use bitcoin::script::{Instruction, PushBytesBuf};
use bitcoin::{OutPoint, Script, ScriptBuf, Transaction};

use crate::encode::{tagged_hash, EndOfInput, Reader};

/// The first bytes of every asset record.
pub const MAGIC: &[u8; 3] = b"BMA";
/// The record version this code reads and writes.
pub const VERSION: u8 = 1;
/// The longest ticker.
pub const MAX_TICKER_LEN: usize = 8;
/// The most decimals an asset may declare.
pub const MAX_DECIMALS: u8 = 18;
/// The most assets one transfer record may move.
pub const MAX_TRANSFER_ASSETS: usize = 16;
/// The most allocations one asset may have in a transfer.
pub const MAX_ALLOCATIONS: usize = 32;

const KIND_ISSUE: u8 = 1;
const KIND_TRANSFER: u8 = 2;

/// An asset's identity: a tagged SHA-256 of the outpoint its issuing transaction spends first.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AssetId([u8; 32]);

impl AssetId {
    /// The id of the asset issued by a transaction whose first input spends `outpoint`.
    pub fn from_issuing_outpoint(outpoint: &OutPoint) -> AssetId {
        AssetId(tagged_hash(
            b"bitmesh/asset-id",
            &[outpoint.txid.as_byte_array(), &outpoint.vout.to_le_bytes()],
        ))
    }

    /// The id's 32 bytes.
    pub fn to_byte_array(self) -> [u8; 32] {
        self.0
    }

    /// The id from its 32 bytes.
    pub fn from_byte_array(bytes: [u8; 32]) -> AssetId {
        AssetId(bytes)
    }
}

impl fmt::Display for AssetId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|byte| write!(f, "{byte:02x}"))
    }
}

impl fmt::Debug for AssetId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AssetId({self})")
    }
}

/// What an issuance declares about its asset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issuance {
    /// 1 to 8 characters of `A-Z` and `0-9`.
    pub ticker: String,
    /// How many decimal places a base unit is (display only; amounts are integers).
    pub decimals: u8,
    /// The whole supply, in base units, paid to `output`.
    pub supply: u64,
    /// The output that receives the supply.
    pub output: u16,
}

/// How one asset's units are allocated to the outputs of a transfer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transfer {
    /// The asset moved.
    pub asset: AssetId,
    /// (output index, amount in base units), each output at most once.
    pub allocations: Vec<(u16, u64)>,
}

/// An asset record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AssetRecord {
    /// Creates a new asset.
    Issue(Issuance),
    /// Moves existing assets.
    Transfer(Vec<Transfer>),
}

/// The asset units an output holds: sorted by asset, no zero amounts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct AssetAmounts(Vec<(AssetId, u64)>);

impl AssetAmounts {
    /// No assets.
    pub const fn none() -> AssetAmounts {
        AssetAmounts(Vec::new())
    }

    /// Whether the output holds no asset.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// (asset, amount) pairs, sorted by asset.
    pub fn iter(&self) -> impl Iterator<Item = (AssetId, u64)> + '_ {
        self.0.iter().copied()
    }

    /// The amount of `asset`, zero when absent.
    pub fn amount(&self, asset: &AssetId) -> u64 {
        self.0
            .binary_search_by(|(id, _)| id.cmp(asset))
            .map_or(0, |index| self.0[index].1)
    }

    /// The units of each asset that all of `amounts` hold together. (Chain coins cannot
    /// overflow: an asset's coins hold at most its supply.)
    pub fn total<'a>(
        amounts: impl IntoIterator<Item = &'a AssetAmounts>,
    ) -> BTreeMap<AssetId, u64> {
        let mut total: BTreeMap<AssetId, u64> = BTreeMap::new();
        for (asset, units) in amounts.into_iter().flat_map(AssetAmounts::iter) {
            *total.entry(asset).or_default() += units;
        }
        total
    }

    /// The units of each asset in `units` (zero amounts dropped).
    pub fn from_units(units: BTreeMap<AssetId, u64>) -> AssetAmounts {
        AssetAmounts(
            units
                .into_iter()
                .filter(|(_, amount)| *amount > 0)
                .collect(),
        )
    }
}

/// Why a transaction breaks the asset rules.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AssetError {
    /// An asset record's bytes are malformed; the text says where.
    Malformed(&'static str),
    /// The record has a version this code does not know.
    UnknownVersion(u8),
    /// More than one output carries an asset record.
    MultipleRecords,
    /// A coinbase carries an asset record; coinbases carry no assets.
    CoinbaseRecord,
    /// An allocation or issuance names an output that is missing or unspendable.
    BadOutput(u16),
    /// The same asset appears twice in one transfer.
    DuplicateAsset(AssetId),
    /// The same output appears twice in one asset's allocations.
    DuplicateAllocation { asset: AssetId, output: u16 },
    /// An allocation of zero units.
    ZeroAmount(AssetId),
    /// The inputs hold units of an asset the transaction does not allocate.
    Unallocated(AssetId),
    /// The allocated units of an asset differ from the units on the inputs.
    NotConserved {
        asset: AssetId,
        inputs: u64,
        outputs: u64,
    },
    /// Amounts overflow 64 bits.
    Overflow(AssetId),
}

impl fmt::Display for AssetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AssetError::Malformed(what) => write!(f, "malformed asset record: {what}"),
            AssetError::UnknownVersion(version) => write!(f, "asset record version {version} is unknown"),
            AssetError::MultipleRecords => f.write_str("more than one output carries an asset record"),
            AssetError::CoinbaseRecord => f.write_str("a coinbase may not carry an asset record"),
            AssetError::BadOutput(output) => {
                write!(f, "output {output} does not exist or cannot hold assets")
            }
            AssetError::DuplicateAsset(asset) => write!(f, "asset {asset} appears twice in the transfer"),
            AssetError::DuplicateAllocation { asset, output } => {
                write!(f, "asset {asset} is allocated to output {output} twice")
            }
            AssetError::ZeroAmount(asset) => write!(f, "an allocation of asset {asset} is zero"),
            AssetError::Unallocated(asset) => write!(
                f,
                "the inputs hold asset {asset} but the transaction does not allocate it (it would be burnt)"
            ),
            AssetError::NotConserved { asset, inputs, outputs } => write!(
                f,
                "asset {asset}: the inputs hold {inputs} units but {outputs} are allocated"
            ),
            AssetError::Overflow(asset) => write!(f, "amounts of asset {asset} overflow"),
        }
    }
}

impl std::error::Error for AssetError {}

impl AssetRecord {
    /// The record's bytes (the push after OP_RETURN).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64);
        out.extend_from_slice(MAGIC);
        out.push(VERSION);
        match self {
            AssetRecord::Issue(issuance) => {
                out.push(KIND_ISSUE);
                out.push(issuance.ticker.len() as u8);
                out.extend_from_slice(issuance.ticker.as_bytes());
                out.push(issuance.decimals);
                out.extend_from_slice(&issuance.supply.to_le_bytes());
                out.extend_from_slice(&issuance.output.to_le_bytes());
            }
            AssetRecord::Transfer(transfers) => {
                out.push(KIND_TRANSFER);
                out.push(transfers.len() as u8);
                for transfer in transfers {
                    out.extend_from_slice(&transfer.asset.0);
                    out.push(transfer.allocations.len() as u8);
                    for (output, amount) in &transfer.allocations {
                        out.extend_from_slice(&output.to_le_bytes());
                        out.extend_from_slice(&amount.to_le_bytes());
                    }
                }
            }
        }
        out
    }

    /// The OP_RETURN output script carrying this record.
    pub fn to_script(&self) -> ScriptBuf {
        let push = PushBytesBuf::try_from(self.to_bytes()).expect("records are far below 4 GiB");
        ScriptBuf::new_op_return(push)
    }

    /// Reads the record an output script carries: `Ok(None)` when the script is no asset
    /// record (not OP_RETURN, or data without the magic).
    pub fn from_script(script: &Script) -> Result<Option<AssetRecord>, AssetError> {
        if !script.is_op_return() {
            return Ok(None);
        }
        let mut instructions = script.instructions().skip(1);
        let payload = match instructions.next() {
            Some(Ok(Instruction::PushBytes(push))) => push.as_bytes(),
            _ => return Ok(None),
        };
        if !payload.starts_with(MAGIC) {
            return Ok(None);
        }
        if instructions.next().is_some() {
            return Err(AssetError::Malformed("data after the record's push"));
        }
        AssetRecord::from_bytes(payload).map(Some)
    }

    /// Decodes a record's bytes, magic included.
    pub fn from_bytes(bytes: &[u8]) -> Result<AssetRecord, AssetError> {
        let mut reader = Reader::new(bytes);
        if reader.take(3)? != MAGIC {
            return Err(AssetError::Malformed("missing magic"));
        }
        let version = reader.u8()?;
        if version != VERSION {
            return Err(AssetError::UnknownVersion(version));
        }
        let record = match reader.u8()? {
            KIND_ISSUE => {
                let len = usize::from(reader.u8()?);
                if !(1..=MAX_TICKER_LEN).contains(&len) {
                    return Err(AssetError::Malformed("ticker length is not 1 to 8"));
                }
                let ticker = reader.take(len)?;
                if !ticker
                    .iter()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
                {
                    return Err(AssetError::Malformed(
                        "ticker has characters other than A-Z and 0-9",
                    ));
                }
                let decimals = reader.u8()?;
                if decimals > MAX_DECIMALS {
                    return Err(AssetError::Malformed("more than 18 decimals"));
                }
                let supply = reader.u64()?;
                if supply == 0 {
                    return Err(AssetError::Malformed("zero supply"));
                }
                let output = reader.u16()?;
                AssetRecord::Issue(Issuance {
                    ticker: String::from_utf8(ticker.to_vec()).expect("checked ASCII"),
                    decimals,
                    supply,
                    output,
                })
            }
            KIND_TRANSFER => {
                let count = usize::from(reader.u8()?);
                if !(1..=MAX_TRANSFER_ASSETS).contains(&count) {
                    return Err(AssetError::Malformed(
                        "transfer of 0 or more than 16 assets",
                    ));
                }
                let mut transfers = Vec::with_capacity(count);
                for _ in 0..count {
                    let asset = AssetId(reader.array()?);
                    let allocations = usize::from(reader.u8()?);
                    if !(1..=MAX_ALLOCATIONS).contains(&allocations) {
                        return Err(AssetError::Malformed("0 or more than 32 allocations"));
                    }
                    let allocations = (0..allocations)
                        .map(|_| Ok((reader.u16()?, reader.u64()?)))
                        .collect::<Result<_, AssetError>>()?;
                    transfers.push(Transfer { asset, allocations });
                }
                AssetRecord::Transfer(transfers)
            }
            _ => return Err(AssetError::Malformed("unknown record kind")),
        };
        if !reader.rest().is_empty() {
            return Err(AssetError::Malformed("trailing bytes"));
        }
        Ok(record)
    }
}

/// A newly issued asset, as the chain registers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedAsset {
    /// The asset's id.
    pub id: AssetId,
    /// Its declaration.
    pub issuance: Issuance,
}

/// Where the asset units of a valid transaction go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allocation {
    /// The assets each output receives, by output index.
    pub outputs: Vec<AssetAmounts>,
    /// The asset the transaction issues, if it is an issuance.
    pub issued: Option<IssuedAsset>,
}

/// Applies the asset rules to `tx`, whose inputs hold `inputs[i]`.
pub fn allocate(tx: &Transaction, inputs: &[&AssetAmounts]) -> Result<Allocation, AssetError> {
    let mut record = None;
    for txout in &tx.output {
        if let Some(found) = AssetRecord::from_script(&txout.script_pubkey)? {
            if record.replace(found).is_some() {
                return Err(AssetError::MultipleRecords);
            }
        }
    }
    if record.is_some() && tx.is_coinbase() {
        return Err(AssetError::CoinbaseRecord);
    }
    let mut held: BTreeMap<AssetId, u64> = BTreeMap::new();
    for (asset, amount) in inputs.iter().flat_map(|amounts| amounts.iter()) {
        let total = held.entry(asset).or_default();
        *total = total
            .checked_add(amount)
            .ok_or(AssetError::Overflow(asset))?;
    }
    let mut outputs = vec![BTreeMap::<AssetId, u64>::new(); tx.output.len()];
    let receiving = |output: u16| -> Result<usize, AssetError> {
        let index = usize::from(output);
        match tx.output.get(index) {
            Some(txout) if !txout.script_pubkey.is_op_return() => Ok(index),
            _ => Err(AssetError::BadOutput(output)),
        }
    };
    let mut issued = None;
    match record {
        None => {
            if let Some((&asset, _)) = held.iter().next() {
                return Err(AssetError::Unallocated(asset));
            }
        }
        Some(AssetRecord::Issue(issuance)) => {
            if let Some((&asset, _)) = held.iter().next() {
                return Err(AssetError::Unallocated(asset));
            }
            let id = AssetId::from_issuing_outpoint(&tx.input[0].previous_output);
            outputs[receiving(issuance.output)?].insert(id, issuance.supply);
            issued = Some(IssuedAsset { id, issuance });
        }
        Some(AssetRecord::Transfer(transfers)) => {
            let mut moved: BTreeMap<AssetId, u64> = BTreeMap::new();
            for transfer in &transfers {
                let asset = transfer.asset;
                if moved.contains_key(&asset) {
                    return Err(AssetError::DuplicateAsset(asset));
                }
                let mut total = 0u64;
                for &(output, amount) in &transfer.allocations {
                    if amount == 0 {
                        return Err(AssetError::ZeroAmount(asset));
                    }
                    let slot = outputs[receiving(output)?].entry(asset).or_default();
                    if *slot != 0 {
                        return Err(AssetError::DuplicateAllocation { asset, output });
                    }
                    *slot = amount;
                    total = total
                        .checked_add(amount)
                        .ok_or(AssetError::Overflow(asset))?;
                }
                moved.insert(asset, total);
            }
            if let Some((&asset, _)) = held.iter().find(|(asset, _)| !moved.contains_key(asset)) {
                return Err(AssetError::Unallocated(asset));
            }
            for (asset, outputs) in moved {
                let inputs = held.get(&asset).copied().unwrap_or(0);
                if inputs != outputs {
                    return Err(AssetError::NotConserved {
                        asset,
                        inputs,
                        outputs,
                    });
                }
            }
        }
    }
    Ok(Allocation {
        outputs: outputs.into_iter().map(AssetAmounts::from_units).collect(),
        issued,
    })
}

impl From<EndOfInput> for AssetError {
    fn from(_: EndOfInput) -> AssetError {
        AssetError::Malformed("the record ends early")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bitcoin::transaction::Version;
    use bitcoin::{absolute, Amount, Sequence, TxIn, TxOut, Txid, WPubkeyHash, Witness};

    fn outpoint(n: u8) -> OutPoint {
        OutPoint::new(Txid::from_byte_array([n; 32]), u32::from(n))
    }

    fn pay() -> TxOut {
        TxOut {
            value: Amount::from_sat(1_000),
            script_pubkey: ScriptBuf::new_p2wpkh(&WPubkeyHash::from_byte_array([3; 20])),
        }
    }

    fn tx_with(inputs: usize, record: Option<&AssetRecord>, payments: usize) -> Transaction {
        let mut output: Vec<TxOut> = (0..payments).map(|_| pay()).collect();
        if let Some(record) = record {
            output.push(TxOut {
                value: Amount::ZERO,
                script_pubkey: record.to_script(),
            });
        }
        Transaction {
            version: Version::TWO,
            lock_time: absolute::LockTime::ZERO,
            input: (0..inputs)
                .map(|n| TxIn {
                    previous_output: outpoint(n as u8 + 1),
                    script_sig: ScriptBuf::new(),
                    sequence: Sequence::MAX,
                    witness: Witness::new(),
                })
                .collect(),
            output,
        }
    }

    fn issue(supply: u64, output: u16) -> AssetRecord {
        AssetRecord::Issue(Issuance {
            ticker: "GOLD".into(),
            decimals: 2,
            supply,
            output,
        })
    }

    fn asset(n: u8) -> AssetId {
        AssetId::from_issuing_outpoint(&outpoint(n))
    }

    fn holding(pairs: &[(AssetId, u64)]) -> AssetAmounts {
        AssetAmounts::from_units(pairs.iter().copied().collect())
    }

    fn transfer(moves: &[(AssetId, &[(u16, u64)])]) -> AssetRecord {
        AssetRecord::Transfer(
            moves
                .iter()
                .map(|(asset, allocations)| Transfer {
                    asset: *asset,
                    allocations: allocations.to_vec(),
                })
                .collect(),
        )
    }

    #[test]
    fn records_round_trip_through_scripts() {
        for record in [
            issue(21_000_000, 0),
            transfer(&[(asset(1), &[(0, 5), (2, 7)]), (asset(2), &[(1, 1)])]),
        ] {
            let script = record.to_script();
            assert_eq!(AssetRecord::from_script(&script), Ok(Some(record)));
        }
    }

    #[test]
    fn other_scripts_are_no_records() {
        assert_eq!(AssetRecord::from_script(&pay().script_pubkey), Ok(None));
        assert_eq!(
            AssetRecord::from_script(&ScriptBuf::new_op_return(b"hello")),
            Ok(None)
        );
        assert_eq!(
            AssetRecord::from_script(&ScriptBuf::from_bytes(vec![0x6a])),
            Ok(None)
        );
    }

    #[test]
    fn malformed_records_say_what_is_wrong() {
        let good = issue(10, 0).to_bytes();
        let cases: Vec<(Vec<u8>, AssetError)> = vec![
            (
                good[..good.len() - 1].to_vec(),
                AssetError::Malformed("the record ends early"),
            ),
            (
                [good.clone(), vec![0]].concat(),
                AssetError::Malformed("trailing bytes"),
            ),
            (
                [&b"BMA"[..], &[2, 1]].concat(),
                AssetError::UnknownVersion(2),
            ),
            (
                [&b"BMA"[..], &[1, 9]].concat(),
                AssetError::Malformed("unknown record kind"),
            ),
            (
                [&b"BMA"[..], &[1, 1, 0]].concat(),
                AssetError::Malformed("ticker length is not 1 to 8"),
            ),
            (
                [
                    &b"BMA"[..],
                    &[1, 1, 2],
                    b"g1",
                    &[0],
                    &5u64.to_le_bytes(),
                    &[0, 0],
                ]
                .concat(),
                AssetError::Malformed("ticker has characters other than A-Z and 0-9"),
            ),
            (
                [
                    &b"BMA"[..],
                    &[1, 1, 1],
                    b"G",
                    &[19],
                    &5u64.to_le_bytes(),
                    &[0, 0],
                ]
                .concat(),
                AssetError::Malformed("more than 18 decimals"),
            ),
            (
                [
                    &b"BMA"[..],
                    &[1, 1, 1],
                    b"G",
                    &[0],
                    &0u64.to_le_bytes(),
                    &[0, 0],
                ]
                .concat(),
                AssetError::Malformed("zero supply"),
            ),
            (
                [&b"BMA"[..], &[1, 2, 0]].concat(),
                AssetError::Malformed("transfer of 0 or more than 16 assets"),
            ),
            (
                [&b"BMA"[..], &[1, 2, 1], &[9; 32], &[0]].concat(),
                AssetError::Malformed("0 or more than 32 allocations"),
            ),
        ];
        for (bytes, expected) in cases {
            assert_eq!(
                AssetRecord::from_bytes(&bytes),
                Err(expected.clone()),
                "{expected}"
            );
        }
        let mut trailing_push = issue(10, 0).to_script().into_bytes();
        trailing_push.push(0x51);
        assert_eq!(
            AssetRecord::from_script(Script::from_bytes(&trailing_push)),
            Err(AssetError::Malformed("data after the record's push"))
        );
    }

    #[test]
    fn issuance_pays_the_supply_to_its_output() {
        let tx = tx_with(1, Some(&issue(1_000, 1)), 2);
        let none = AssetAmounts::none();
        let allocation = allocate(&tx, &[&none]).unwrap();
        let id = AssetId::from_issuing_outpoint(&tx.input[0].previous_output);
        assert_eq!(allocation.outputs[1], holding(&[(id, 1_000)]));
        assert!(allocation.outputs[0].is_empty() && allocation.outputs[2].is_empty());
        assert_eq!(allocation.issued.unwrap().id, id);
    }

    #[test]
    fn issuance_refusals() {
        let none = AssetAmounts::none();
        let to_op_return = tx_with(1, Some(&issue(1, 1)), 1);
        assert_eq!(
            allocate(&to_op_return, &[&none]),
            Err(AssetError::BadOutput(1))
        );
        let out_of_range = tx_with(1, Some(&issue(1, 7)), 1);
        assert_eq!(
            allocate(&out_of_range, &[&none]),
            Err(AssetError::BadOutput(7))
        );
        let held = holding(&[(asset(9), 4)]);
        let burning = tx_with(1, Some(&issue(1, 0)), 1);
        assert_eq!(
            allocate(&burning, &[&held]),
            Err(AssetError::Unallocated(asset(9)))
        );
    }

    #[test]
    fn transfers_conserve_exactly() {
        let (gold, silver) = (asset(1), asset(2));
        let inputs = [holding(&[(gold, 10)]), holding(&[(gold, 5), (silver, 3)])];
        let inputs: Vec<&AssetAmounts> = inputs.iter().collect();
        let record = transfer(&[(gold, &[(0, 12), (1, 3)]), (silver, &[(1, 3)])]);
        let allocation = allocate(&tx_with(2, Some(&record), 2), &inputs).unwrap();
        assert_eq!(allocation.outputs[0], holding(&[(gold, 12)]));
        assert_eq!(allocation.outputs[1], holding(&[(gold, 3), (silver, 3)]));
        assert!(allocation.issued.is_none());
    }

    #[test]
    fn transfer_refusals() {
        let (gold, silver) = (asset(1), asset(2));
        let held = holding(&[(gold, 10)]);
        let inputs = [&held];
        let check = |record: AssetRecord| allocate(&tx_with(1, Some(&record), 2), &inputs);

        assert_eq!(
            check(transfer(&[(gold, &[(0, 9)])])),
            Err(AssetError::NotConserved {
                asset: gold,
                inputs: 10,
                outputs: 9
            })
        );
        assert_eq!(
            check(transfer(&[(gold, &[(0, 10), (1, 1)])])),
            Err(AssetError::NotConserved {
                asset: gold,
                inputs: 10,
                outputs: 11
            })
        );
        assert_eq!(
            check(transfer(&[(gold, &[(0, 10)]), (silver, &[(1, 1)])])),
            Err(AssetError::NotConserved {
                asset: silver,
                inputs: 0,
                outputs: 1
            })
        );
        assert_eq!(
            check(transfer(&[(silver, &[(1, 1)])])),
            Err(AssetError::Unallocated(gold))
        );
        assert_eq!(
            check(transfer(&[(gold, &[(0, 5)]), (gold, &[(1, 5)])])),
            Err(AssetError::DuplicateAsset(gold))
        );
        assert_eq!(
            check(transfer(&[(gold, &[(0, 5), (0, 5)])])),
            Err(AssetError::DuplicateAllocation {
                asset: gold,
                output: 0
            })
        );
        assert_eq!(
            check(transfer(&[(gold, &[(0, 10), (1, 0)])])),
            Err(AssetError::ZeroAmount(gold))
        );
        assert_eq!(
            check(transfer(&[(gold, &[(2, 10)])])),
            Err(AssetError::BadOutput(2))
        );
        assert_eq!(
            check(transfer(&[(gold, &[(0, u64::MAX), (1, 2)])])),
            Err(AssetError::Overflow(gold))
        );

        // No record at all: the held units would be burnt.
        assert_eq!(
            allocate(&tx_with(1, None, 1), &inputs),
            Err(AssetError::Unallocated(gold))
        );

        let mut two = tx_with(1, Some(&transfer(&[(gold, &[(0, 10)])])), 1);
        two.output.push(two.output[1].clone());
        assert_eq!(allocate(&two, &inputs), Err(AssetError::MultipleRecords));
    }

    #[test]
    fn coinbases_carry_no_records() {
        let mut coinbase = tx_with(1, Some(&issue(5, 0)), 1);
        coinbase.input[0].previous_output = OutPoint::null();
        let none = AssetAmounts::none();
        assert_eq!(
            allocate(&coinbase, &[&none]),
            Err(AssetError::CoinbaseRecord)
        );
    }

    #[test]
    fn asset_ids_depend_on_the_outpoint() {
        assert_eq!(asset(1), asset(1));
        assert_ne!(asset(1), asset(2));
        let other_vout = AssetId::from_issuing_outpoint(&OutPoint::new(outpoint(1).txid, 2));
        assert_ne!(asset(1), other_vout);
    }
}
