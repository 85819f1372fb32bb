//! The page's wallet: whether there is one and whether it is unlocked, what each thing a person
//! asks of it does, and the summary the views show. Randomness comes in from the driver, so this
//! runs (and is tested) natively too.
//!
//! The seed exists in the clear only inside an unlocked [`Wallet`] (derived keys) and, for the
//! moment a command runs, inside a zeroized [`Secret`]; what is stored is the vault and the
//! metadata.

use bitcoin::Transaction;
use bitmesh_core::chain::state::Chain;
use bitmesh_core::store::{Table, WriteBatch, DESK_KEY, METADATA_KEY, VAULT_KEY};
use bitmesh_core::wallet::build::{BuiltTx, IssueRequest};
use bitmesh_core::wallet::device_group::DeviceGroup;
use bitmesh_core::wallet::metadata::{DeviceId, LabelTarget, Metadata, Stamp};
use bitmesh_core::wallet::mnemonic;
use bitmesh_core::wallet::session::{parse_units, SendAmount, Wallet};
use bitmesh_core::wallet::tracker::{TxStatus, Unit};
use bitmesh_core::wallet::vault::{KdfParams, Secret, Vault};
use bitmesh_core::Network;

use crate::app::format_units;

/// The shortest password accepted for a new vault.
pub const MIN_PASSWORD_LEN: usize = 8;
/// How long the coins of a spend under review are held for it (then they free themselves, so
/// a closed tab holds nothing for long).
pub const REVIEW_HOLD_MILLIS: u64 = 10 * 60_000;

/// What a person asks of the wallet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WalletCommand {
    /// Keep a new wallet of `phrase` (just shown to its owner) under `password`.
    Create {
        phrase: String,
        password: String,
    },
    /// Keep the wallet of a typed `phrase` under `password`.
    Restore {
        phrase: String,
        password: String,
    },
    Unlock {
        password: String,
    },
    Lock,
    /// Move on to a fresh receive address.
    NewAddress,
    /// Pay `amount` (or everything, with `max`) of `unit` to `to`; with `psbt_only`, export the
    /// unsigned transaction instead of sending it.
    Send {
        to: String,
        unit: Unit,
        amount: String,
        max: bool,
        fee_rate: String,
        psbt_only: bool,
    },
    /// Issue a new asset to the wallet.
    Issue {
        ticker: String,
        decimals: String,
        supply: String,
        fee_rate: String,
    },
    /// Sign and send the spend under review (the driver first waits for the online sibling
    /// devices to see its reservation).
    ConfirmSpend,
    /// Drop the spend under review and free its coins.
    CancelSpend,
    /// Label a transaction (an empty label removes it).
    Label {
        txid: String,
        label: String,
    },
}

/// The result of a command, in words for the person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    Done(String),
    /// An unsigned PSBT, base64.
    Psbt(String),
    Refused(String),
}

/// What a command asks the driver to do besides showing its notice.
#[derive(Debug, Default)]
pub struct Effects {
    /// Writes to keep (vault, metadata).
    pub writes: WriteBatch,
    /// A signed transaction to submit to the mempool and relay.
    pub submit: Option<Transaction>,
    /// The wallet's device group, derived from the seed when the wallet opened.
    pub group: Option<DeviceGroup>,
    /// The metadata changed: siblings are told.
    pub metadata_changed: bool,
    /// A wallet was made or restored from words: what was kept of the last one's trades
    /// (deleted here) is not its.
    pub fresh_wallet: bool,
}

/// A spend prepared and under review: its coins are reserved for it.
#[derive(Debug, Clone)]
pub struct PendingSpend {
    built: BuiltTx,
    /// What the person is asked to confirm.
    review: String,
    /// What is said once it is sent (the txid follows).
    done: String,
    /// The stamp of the reservation: siblings that have seen it acknowledge it.
    pub stamp: Stamp,
}

/// Where the page's wallet is.
#[derive(Debug)]
pub enum PageWallet {
    /// No wallet in this profile yet.
    Absent,
    Locked(Vault),
    Unlocked {
        vault: Vault,
        wallet: Box<Wallet>,
        pending: Option<Box<PendingSpend>>,
    },
}

/// Fresh random bytes a command may need (salts, nonces, signature randomness).
pub struct Randomness {
    pub salt: [u8; 16],
    pub nonce: [u8; 12],
    pub aux: [u8; 32],
}

/// What a command runs with besides the wallet.
pub struct CommandContext<'a> {
    pub network: Network,
    pub chain: &'a Chain,
    /// The metadata kept while the wallet was locked (read at unlock).
    pub metadata: Option<Metadata>,
    /// This device (its writes are stamped with it).
    pub device: DeviceId,
    pub now_millis: u64,
    pub random: Randomness,
}

/// What the views show of the wallet.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum WalletView {
    #[default]
    Loading,
    Absent,
    Locked,
    Unlocked(Summary),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub receive: String,
    /// The spend under review, in words, if any.
    pub pending: Option<String>,
    pub balances: Vec<BalanceRow>,
    pub history: Vec<HistoryRow>,
    pub descriptor: String,
    /// Blocks of the tab's chain the wallet has not followed yet.
    pub behind: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BalanceRow {
    pub unit: Unit,
    /// "BTC" or the asset's ticker.
    pub name: String,
    pub decimals: u8,
    pub confirmed: u64,
    pub unconfirmed: u64,
    pub immature: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryRow {
    pub txid: String,
    pub confirmations: u32,
    pub conflicted: bool,
    pub trade: bool,
    /// What it changed, as "+0.10000000 BTC", "-5.00 GOLD".
    pub changes: Vec<String>,
    pub fee: Option<String>,
    pub label: Option<String>,
}

impl PageWallet {
    /// The wallet kept in a store: its vault record, if any.
    pub fn from_store(vault: Option<Vec<u8>>) -> Result<PageWallet, String> {
        match vault {
            None => Ok(PageWallet::Absent),
            Some(bytes) => Vault::from_bytes(bytes)
                .map(PageWallet::Locked)
                .map_err(|err| format!("The kept wallet cannot be read: {err}")),
        }
    }

    /// The unlocked wallet, if it is.
    pub fn unlocked(&mut self) -> Option<&mut Wallet> {
        match self {
            PageWallet::Unlocked { wallet, .. } => Some(wallet),
            _ => None,
        }
    }

    /// The unlocked wallet, if it is, to read.
    pub fn unlocked_ref(&self) -> Option<&Wallet> {
        match self {
            PageWallet::Unlocked { wallet, .. } => Some(wallet),
            _ => None,
        }
    }

    /// Carries out `command`. A refusal changes nothing.
    pub fn command(
        &mut self,
        command: WalletCommand,
        context: CommandContext<'_>,
    ) -> (Notice, Effects) {
        self.run(command, context)
            .unwrap_or_else(|reason| (Notice::Refused(reason), Effects::default()))
    }

    fn run(
        &mut self,
        command: WalletCommand,
        context: CommandContext<'_>,
    ) -> Result<(Notice, Effects), String> {
        let CommandContext {
            network,
            chain,
            metadata,
            device,
            now_millis,
            random,
        } = context;
        let mut effects = Effects::default();
        let notice = match command {
            WalletCommand::Create { phrase, password }
            | WalletCommand::Restore { phrase, password } => {
                if !matches!(self, PageWallet::Absent) {
                    return Err("This browser already keeps a wallet for this network".into());
                }
                if password.chars().count() < MIN_PASSWORD_LEN {
                    return Err(format!(
                        "Choose a password of at least {MIN_PASSWORD_LEN} characters"
                    ));
                }
                let mnemonic = mnemonic::parse(&phrase)
                    .map_err(|err| format!("The recovery phrase is not valid: {err}"))?;
                let secret = Secret::new(&mnemonic, "");
                let vault = Vault::seal(
                    &secret,
                    &password,
                    KdfParams::OWASP,
                    random.salt,
                    random.nonce,
                )
                .map_err(|err| format!("The wallet cannot be sealed: {err}"))?;
                let wallet = Wallet::new(&secret.seed()[..], network, Metadata::new())
                    .map_err(|err| format!("The wallet's keys cannot be derived: {err}"))?;
                effects
                    .writes
                    .put(Table::WALLET, VAULT_KEY.to_vec(), vault.as_bytes().to_vec());
                keep_metadata(&mut effects.writes, &wallet);
                effects.writes.delete(Table::WALLET, DESK_KEY.to_vec());
                effects.fresh_wallet = true;
                effects.group = Some(DeviceGroup::from_seed(&secret.seed()[..], network));
                *self = PageWallet::Unlocked {
                    vault,
                    wallet: Box::new(wallet),
                    pending: None,
                };
                Notice::Done(
                    "The wallet is kept in this browser, encrypted with your password".into(),
                )
            }
            WalletCommand::Unlock { password } => {
                let PageWallet::Locked(vault) = self else {
                    return Err("There is no locked wallet to unlock".into());
                };
                let secret = vault.open(&password).map_err(|err| match err {
                    bitmesh_core::wallet::vault::VaultError::WrongPassword => {
                        "Wrong password: the wallet stays locked".to_owned()
                    }
                    other => format!("The wallet cannot be opened: {other}"),
                })?;
                let wallet = Wallet::new(&secret.seed()[..], network, metadata.unwrap_or_default())
                    .map_err(|err| format!("The wallet's keys cannot be derived: {err}"))?;
                effects.group = Some(DeviceGroup::from_seed(&secret.seed()[..], network));
                *self = PageWallet::Unlocked {
                    vault: vault.clone(),
                    wallet: Box::new(wallet),
                    pending: None,
                };
                Notice::Done("Unlocked".into())
            }
            WalletCommand::Lock => {
                if self.release_pending(device, now_millis) {
                    keep_metadata(&mut effects.writes, self.require_unlocked()?);
                    effects.metadata_changed = true;
                }
                let PageWallet::Unlocked { vault, .. } = self else {
                    return Err("The wallet is not unlocked".into());
                };
                *self = PageWallet::Locked(vault.clone());
                Notice::Done("Locked".into())
            }
            WalletCommand::NewAddress => {
                let wallet = self.require_unlocked()?;
                let address = wallet.new_receive_address(device, now_millis);
                keep_metadata(&mut effects.writes, wallet);
                effects.metadata_changed = true;
                Notice::Done(format!("A fresh receive address: {address}"))
            }
            WalletCommand::Send {
                to,
                unit,
                amount,
                max,
                fee_rate,
                psbt_only,
            } => {
                let wallet = self.require_unlocked()?;
                let fee_rate = parse_fee_rate(&fee_rate)?;
                let (name, decimals) = unit_name(chain, unit);
                let amount = if max {
                    SendAmount::Max
                } else {
                    SendAmount::Exact(
                        parse_units(&amount, decimals).map_err(|err| format!("Amount: {err}"))?,
                    )
                };
                let built = wallet
                    .prepare_send(&to, unit, amount, fee_rate, now_millis)
                    .map_err(|err| format!("Cannot send: {err}"))?;
                if psbt_only {
                    Notice::Psbt(wallet.psbt(&built))
                } else {
                    let sent = format!(
                        "{} {name}",
                        format_units(sent_amount(&built, unit, amount, wallet), decimals)
                    );
                    let fee = format_units(built.fee.to_sat(), 8);
                    let review = format!("Send {sent} to {}, fee {fee} BTC?", to.trim());
                    let done = format!("Sent {sent}, fee {fee} BTC");
                    self.review(built, review, done, device, now_millis, &mut effects)?
                }
            }
            WalletCommand::Issue {
                ticker,
                decimals,
                supply,
                fee_rate,
            } => {
                let wallet = self.require_unlocked()?;
                let fee_rate = parse_fee_rate(&fee_rate)?;
                let decimals: u8 = decimals
                    .trim()
                    .parse()
                    .ok()
                    .filter(|decimals| *decimals <= 18)
                    .ok_or("Decimals: a whole number from 0 to 18")?;
                let supply =
                    parse_units(&supply, decimals).map_err(|err| format!("Supply: {err}"))?;
                let request = IssueRequest {
                    ticker: ticker.trim().to_owned(),
                    decimals,
                    supply,
                };
                let built = wallet
                    .prepare_issue(&request, fee_rate, now_millis)
                    .map_err(|err| format!("Cannot issue: {err}"))?;
                let issued = format!("{} {}", format_units(supply, decimals), request.ticker);
                let fee = format_units(built.fee.to_sat(), 8);
                let review = format!("Issue {issued}, fee {fee} BTC?");
                let done = format!("Issued {issued}, fee {fee} BTC");
                self.review(built, review, done, device, now_millis, &mut effects)?
            }
            WalletCommand::ConfirmSpend => {
                let PageWallet::Unlocked {
                    wallet, pending, ..
                } = self
                else {
                    return Err("Unlock the wallet first".into());
                };
                let spend = pending.take().ok_or("There is no spend to confirm")?;
                let tx = wallet.sign(&spend.built, &random.aux);
                keep_metadata(&mut effects.writes, wallet);
                effects.metadata_changed = true;
                let notice = Notice::Done(format!("{}: {}", spend.done, tx.compute_txid()));
                effects.submit = Some(tx);
                notice
            }
            WalletCommand::CancelSpend => {
                if !self.release_pending(device, now_millis) {
                    return Err("There is no spend to cancel".into());
                }
                keep_metadata(&mut effects.writes, self.require_unlocked()?);
                effects.metadata_changed = true;
                Notice::Done("Cancelled: its coins are free again".into())
            }
            WalletCommand::Label { txid, label } => {
                let wallet = self.require_unlocked()?;
                let txid: bitcoin::Txid = txid
                    .trim()
                    .parse()
                    .map_err(|_| format!("\"{}\" is not a transaction id", txid.trim()))?;
                let label = label.trim();
                let stamp = wallet.metadata().next_stamp(device, now_millis);
                wallet.metadata_mut().set_label(
                    LabelTarget::Transaction(txid),
                    (!label.is_empty()).then(|| label.to_owned()),
                    stamp,
                );
                keep_metadata(&mut effects.writes, wallet);
                effects.metadata_changed = true;
                Notice::Done(if label.is_empty() {
                    "Label removed".into()
                } else {
                    "Label saved".into()
                })
            }
        };
        Ok((notice, effects))
    }

    /// Puts `built` under review: its coins are reserved (for [`REVIEW_HOLD_MILLIS`]) so
    /// neither this device nor a sibling spends them meanwhile. A spend already under review
    /// is dropped first.
    fn review(
        &mut self,
        built: BuiltTx,
        review: String,
        done: String,
        device: DeviceId,
        now_millis: u64,
        effects: &mut Effects,
    ) -> Result<Notice, String> {
        self.release_pending(device, now_millis);
        let PageWallet::Unlocked {
            wallet, pending, ..
        } = self
        else {
            return Err("Unlock the wallet first".into());
        };
        let stamp = wallet.reserve(
            &built.own_coins(),
            device,
            now_millis + REVIEW_HOLD_MILLIS,
            now_millis,
        );
        keep_metadata(&mut effects.writes, wallet);
        effects.metadata_changed = true;
        *pending = Some(Box::new(PendingSpend {
            built,
            review: review.clone(),
            done,
            stamp,
        }));
        Ok(Notice::Done(format!(
            "{review} Its coins are held for it while you confirm."
        )))
    }

    /// Drops the spend under review, releasing its coins; whether there was one.
    fn release_pending(&mut self, device: DeviceId, now_millis: u64) -> bool {
        let PageWallet::Unlocked {
            wallet, pending, ..
        } = self
        else {
            return false;
        };
        let Some(spend) = pending.take() else {
            return false;
        };
        wallet.reserve(&spend.built.own_coins(), device, 0, now_millis);
        true
    }

    /// The spend under review, if any.
    pub fn pending(&self) -> Option<&PendingSpend> {
        match self {
            PageWallet::Unlocked { pending, .. } => pending.as_deref(),
            _ => None,
        }
    }

    fn require_unlocked(&mut self) -> Result<&mut Wallet, String> {
        self.unlocked()
            .ok_or_else(|| "Unlock the wallet first".to_owned())
    }

    /// What the views show.
    pub fn view(&self, chain: &Chain) -> WalletView {
        match self {
            PageWallet::Absent => WalletView::Absent,
            PageWallet::Locked(_) => WalletView::Locked,
            PageWallet::Unlocked {
                wallet, pending, ..
            } => WalletView::Unlocked(summary(
                wallet,
                pending.as_ref().map(|spend| spend.review.clone()),
                chain,
            )),
        }
    }
}

/// Adds the write that keeps `wallet`'s metadata.
pub fn keep_metadata(batch: &mut WriteBatch, wallet: &Wallet) {
    batch.put(
        Table::WALLET,
        METADATA_KEY.to_vec(),
        wallet.metadata().encode(),
    );
}

fn parse_fee_rate(text: &str) -> Result<u64, String> {
    text.trim().parse().map_err(|_| {
        format!(
            "Fee rate: \"{}\" is not a whole number of sat/vB",
            text.trim()
        )
    })
}

/// The name and decimals of `unit` on `chain`.
pub(crate) fn unit_name(chain: &Chain, unit: Unit) -> (String, u8) {
    match unit {
        Unit::Btc => ("BTC".into(), 8),
        Unit::Asset(asset) => match chain.asset(&asset) {
            Some(issue) => (issue.ticker.clone(), issue.decimals),
            None => (format!("units of {}", short(&asset.to_string())), 0),
        },
    }
}

fn short(hex: &str) -> &str {
    hex.get(..12).unwrap_or(hex)
}

/// What the recipient of a prepared send gets, in base units of `unit`.
fn sent_amount(built: &BuiltTx, unit: Unit, amount: SendAmount, wallet: &Wallet) -> u64 {
    match (unit, amount) {
        (_, SendAmount::Exact(units)) => units,
        // A sweep has one output: the recipient's.
        (Unit::Btc, SendAmount::Max) => built.tx.output[0].value.to_sat(),
        (Unit::Asset(_), SendAmount::Max) => wallet
            .balances()
            .get(&unit)
            .map_or(0, |balance| balance.confirmed),
    }
}

fn summary(wallet: &Wallet, pending: Option<String>, chain: &Chain) -> Summary {
    let balances = wallet
        .balances()
        .into_iter()
        .map(|(unit, balance)| {
            let (name, decimals) = unit_name(chain, unit);
            BalanceRow {
                unit,
                name,
                decimals,
                confirmed: balance.confirmed,
                unconfirmed: balance.unconfirmed,
                immature: balance.immature,
            }
        })
        .collect();
    let history = wallet
        .history()
        .into_iter()
        .map(|entry| {
            let mut changes = Vec::new();
            let btc = i128::from(entry.received.to_sat()) - i128::from(entry.sent.to_sat());
            if btc != 0 {
                changes.push(signed(btc, 8, "BTC"));
            }
            for (asset, change) in &entry.assets {
                let (name, decimals) = unit_name(chain, Unit::Asset(*asset));
                changes.push(signed(*change, decimals, &name));
            }
            HistoryRow {
                txid: entry.txid.to_string(),
                confirmations: match entry.status {
                    TxStatus::Confirmed { .. } => wallet.tracker().confirmations(entry.status),
                    TxStatus::Unconfirmed { .. } => 0,
                },
                conflicted: entry.conflicted,
                trade: entry.trade,
                changes,
                fee: entry.fee.map(|fee| format_units(fee.to_sat(), 8)),
                label: wallet
                    .metadata()
                    .label(&LabelTarget::Transaction(entry.txid))
                    .map(str::to_owned),
            }
        })
        .collect();
    Summary {
        receive: wallet.receive_address().to_string(),
        pending,
        balances,
        history,
        descriptor: wallet.descriptor(),
        behind: chain.height().saturating_sub(wallet.height()),
    }
}

/// `change` base units with its sign, as "+1.50 GOLD".
fn signed(change: i128, decimals: u8, name: &str) -> String {
    let sign = if change < 0 { '-' } else { '+' };
    let magnitude = u64::try_from(change.unsigned_abs()).unwrap_or(u64::MAX);
    format!("{sign}{} {name}", format_units(magnitude, decimals))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PHRASE: &str = "abandon abandon abandon abandon abandon abandon abandon abandon \
                          abandon abandon abandon about";

    fn random() -> Randomness {
        Randomness {
            salt: [1; 16],
            nonce: [2; 12],
            aux: [3; 32],
        }
    }

    fn run(wallet: &mut PageWallet, command: WalletCommand, chain: &Chain) -> (Notice, Effects) {
        let context = CommandContext {
            network: Network::Test,
            chain,
            metadata: None,
            device: DeviceId([1; 16]),
            now_millis: 0,
            random: random(),
        };
        wallet.command(command, context)
    }

    #[test]
    fn create_lock_unlock_and_a_wrong_password() {
        let chain = Chain::new(Network::Test);
        let mut wallet = PageWallet::Absent;
        let short = WalletCommand::Create {
            phrase: PHRASE.into(),
            password: "short".into(),
        };
        let (notice, effects) = run(&mut wallet, short, &chain);
        assert_eq!(
            notice,
            Notice::Refused("Choose a password of at least 8 characters".into())
        );
        assert!(effects.writes.is_empty() && matches!(wallet, PageWallet::Absent));
        let typo = WalletCommand::Restore {
            phrase: PHRASE.replace("about", "abandon"),
            password: "long enough".into(),
        };
        let (notice, _) = run(&mut wallet, typo, &chain);
        assert!(
            matches!(&notice, Notice::Refused(why) if why.contains("checksum")),
            "{notice:?}"
        );

        let create = WalletCommand::Create {
            phrase: PHRASE.into(),
            password: "correct horse".into(),
        };
        let (notice, effects) = run(&mut wallet, create, &chain);
        assert!(matches!(notice, Notice::Done(_)));
        assert_eq!(effects.writes.writes().len(), 3, "vault and metadata kept");
        assert!(
            effects
                .writes
                .writes()
                .contains(&bitmesh_core::store::Write::Delete {
                    table: Table::WALLET,
                    key: DESK_KEY.to_vec(),
                }),
            "the last wallet's trades are dropped"
        );
        assert!(effects.fresh_wallet);
        let WalletView::Unlocked(summary) = wallet.view(&chain) else {
            panic!("unlocked after creation");
        };
        // The address every BIP84 wallet derives for this phrase at m/84'/1'/0'/0/0.
        assert_eq!(
            summary.receive,
            "bcrt1q6rz28mcfaxtmd6v789l9rrlrusdprr9pz3cppk"
        );
        assert_eq!(summary.balances[0].name, "BTC");

        assert!(matches!(
            run(&mut wallet, WalletCommand::Lock, &chain).0,
            Notice::Done(_)
        ));
        assert_eq!(wallet.view(&chain), WalletView::Locked);
        let wrong = WalletCommand::Unlock {
            password: "wrong horse".into(),
        };
        assert_eq!(
            run(&mut wallet, wrong, &chain).0,
            Notice::Refused("Wrong password: the wallet stays locked".into())
        );
        assert_eq!(wallet.view(&chain), WalletView::Locked);
        let right = WalletCommand::Unlock {
            password: "correct horse".into(),
        };
        assert_eq!(
            run(&mut wallet, right, &chain).0,
            Notice::Done("Unlocked".into())
        );
        assert!(matches!(wallet.view(&chain), WalletView::Unlocked(_)));
    }

    #[test]
    fn sends_are_refused_in_words() {
        let chain = Chain::new(Network::Test);
        let mut wallet = PageWallet::Absent;
        let create = WalletCommand::Create {
            phrase: PHRASE.into(),
            password: "correct horse".into(),
        };
        run(&mut wallet, create, &chain);
        let send = |to: &str, amount: &str, fee: &str| WalletCommand::Send {
            to: to.into(),
            unit: Unit::Btc,
            amount: amount.into(),
            max: false,
            fee_rate: fee.into(),
            psbt_only: false,
        };
        let own = "bcrt1q6rz28mcfaxtmd6v789l9rrlrusdprr9pz3cppk";
        for (command, expected) in [
            (
                send("nope", "1", "1"),
                "Cannot send: \"nope\" is not an address",
            ),
            (send(own, "1.5x", "1"), "Amount: \"1.5x\" is not an amount"),
            (
                send(own, "0.000000001", "1"),
                "Amount: this unit has at most 8 decimal places",
            ),
            (
                send(own, "1", "fast"),
                "Fee rate: \"fast\" is not a whole number of sat/vB",
            ),
        ] {
            let (notice, effects) = run(&mut wallet, command, &chain);
            assert_eq!(notice, Notice::Refused(expected.into()));
            assert!(effects.writes.is_empty() && effects.submit.is_none());
        }
        let (notice, _) = run(&mut wallet, send(own, "1", "1"), &chain);
        assert!(
            matches!(&notice, Notice::Refused(why) if why.starts_with("Cannot send: insufficient funds")),
            "{notice:?}"
        );
    }

    #[test]
    fn labels_are_kept_and_a_spend_needs_one_under_review() {
        let chain = Chain::new(Network::Test);
        let mut wallet = PageWallet::Absent;
        let create = WalletCommand::Create {
            phrase: PHRASE.into(),
            password: "correct horse".into(),
        };
        assert!(
            run(&mut wallet, create, &chain).1.group.is_some(),
            "the device group"
        );
        for command in [WalletCommand::ConfirmSpend, WalletCommand::CancelSpend] {
            let (notice, effects) = run(&mut wallet, command, &chain);
            assert!(matches!(notice, Notice::Refused(why) if why.starts_with("There is no spend")));
            assert!(effects.submit.is_none() && effects.writes.is_empty());
        }
        let label = |txid: &str, label: &str| WalletCommand::Label {
            txid: txid.into(),
            label: label.into(),
        };
        assert_eq!(
            run(&mut wallet, label("nope", "rent"), &chain).0,
            Notice::Refused("\"nope\" is not a transaction id".into())
        );
        let txid = "4a5e1e4baab89f3a32518a88c31bc87f618f76673e2cc77ab2127b7afdeda33b";
        let (notice, effects) = run(&mut wallet, label(txid, " rent "), &chain);
        assert_eq!(notice, Notice::Done("Label saved".into()));
        assert!(effects.metadata_changed && !effects.writes.is_empty());
        let target = LabelTarget::Transaction(txid.parse().unwrap());
        let metadata = wallet.unlocked_ref().unwrap().metadata();
        assert_eq!(metadata.label(&target), Some("rent"));
        run(&mut wallet, label(txid, ""), &chain);
        assert_eq!(
            wallet.unlocked_ref().unwrap().metadata().label(&target),
            None
        );
    }
}
