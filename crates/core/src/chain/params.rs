//! The bitmesh networks and their consensus parameters.
//!
//! Each network is a separate chain with its own genesis block. Both use Bitcoin's regtest address
//! format (`bcrt1...`), so any Bitcoin wallet set to regtest can pay to and from bitmesh addresses.
//! The reasons behind each number are in `docs/adr/0001-network-parameters.md`.

use core::fmt;
use core::str::FromStr;

use bitcoin::{BlockHash, CompactTarget, Target};

use super::genesis;

/// A bitmesh network: one chain, one set of consensus parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Network {
    /// The default network: a native node and the browsers around it on one local network.
    Local,
    /// The network of tests: minimal difficulty and short maturity, so tests run fast.
    Test,
}

/// The consensus parameters of one network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Params {
    /// Which network these parameters belong to.
    pub network: Network,
    /// Four bytes that open every handshake, so peers of different networks never mix.
    pub magic: [u8; 4],
    /// The easiest allowed target, in compact form; the genesis block uses it.
    pub pow_limit_bits: u32,
    /// The block spacing the difficulty algorithm aims at, in seconds.
    pub target_spacing_secs: u32,
    /// Seconds ahead of the ideal schedule that halve the target (ASERT's half-life).
    pub asert_half_life_secs: u32,
    /// Blocks a coinbase output must wait before it can be spent.
    pub coinbase_maturity: u32,
    /// Blocks between two halvings of the block subsidy.
    pub subsidy_halving_interval: u32,
}

const LOCAL: Params = Params {
    network: Network::Local,
    magic: [0xb1, 0x7e, 0x5e, 0x4c],
    pow_limit_bits: 0x1f00_ffff,
    target_spacing_secs: 10,
    asert_half_life_secs: 300,
    coinbase_maturity: 100,
    subsidy_halving_interval: 210_000,
};

const TEST: Params = Params {
    network: Network::Test,
    magic: [0xb1, 0x7e, 0x5e, 0x54],
    pow_limit_bits: 0x207f_ffff,
    target_spacing_secs: 1,
    asert_half_life_secs: 30,
    coinbase_maturity: 2,
    subsidy_halving_interval: 150,
};

impl Network {
    /// Every bitmesh network.
    pub const ALL: [Network; 2] = [Network::Local, Network::Test];

    /// The network's name, as the CLI and the page show it.
    pub fn name(self) -> &'static str {
        match self {
            Network::Local => "local",
            Network::Test => "test",
        }
    }

    /// The consensus parameters of this network.
    pub fn params(self) -> &'static Params {
        match self {
            Network::Local => &LOCAL,
            Network::Test => &TEST,
        }
    }

    /// The Bitcoin network whose address format this network uses (regtest: `bcrt1...`).
    pub fn address_network(self) -> bitcoin::Network {
        bitcoin::Network::Regtest
    }

    /// The first block of this network's chain.
    pub fn genesis_block(self) -> bitcoin::Block {
        genesis::block(self)
    }

    /// The hash of the genesis block, computed from the block itself.
    pub fn genesis_hash(self) -> BlockHash {
        self.genesis_block().block_hash()
    }
}

impl Params {
    /// The easiest allowed target.
    pub fn pow_limit(&self) -> Target {
        Target::from_compact(CompactTarget::from_consensus(self.pow_limit_bits))
    }
}

impl fmt::Display for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Network {
    type Err = ParseNetworkError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Network::ALL
            .into_iter()
            .find(|network| network.name() == s)
            .ok_or_else(|| ParseNetworkError(s.to_owned()))
    }
}

/// A network name that is not one of bitmesh's networks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseNetworkError(String);

impl fmt::Display for ParseNetworkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown bitmesh network `{}` (expected one of:", self.0)?;
        for network in Network::ALL {
            write!(f, " {network}")?;
        }
        f.write_str(")")
    }
}

impl std::error::Error for ParseNetworkError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for network in Network::ALL {
            assert_eq!(network.name().parse::<Network>(), Ok(network));
            assert_eq!(network.params().network, network);
        }
    }

    #[test]
    fn unknown_name_is_refused_with_the_choices() {
        let err = "mainnet".parse::<Network>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown bitmesh network `mainnet` (expected one of: local test)"
        );
    }

    #[test]
    fn networks_never_share_magic() {
        assert_ne!(Network::Local.params().magic, Network::Test.params().magic);
    }

    #[test]
    fn addresses_use_the_regtest_prefix() {
        for network in Network::ALL {
            let empty = bitcoin::ScriptBuf::new();
            let address = bitcoin::Address::p2wsh(&empty, network.address_network());
            assert!(address.to_string().starts_with("bcrt1q"), "{address}");
        }
    }
}
