//! Coin selection: which of the wallet's coins pay for a transaction.
//!
//! First branch-and-bound (as in Bitcoin Core and BDK): a depth-first search for a set of coins
//! whose value after their own input fees lands between the target and the target plus the cost
//! of a change output, so the transaction needs no change. When none exists within the search
//! budget, the largest coins are taken until the target and a change output are covered; change
//! below the dust limit goes to the fee instead. All amounts are integers (satoshis, weight units).

use core::fmt;

use bitcoin::{Amount, FeeRate, OutPoint, Weight};

/// Search steps branch-and-bound may take before falling back.
const BNB_TRIES: usize = 100_000;

/// A coin that may be spent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Candidate {
    /// The coin.
    pub outpoint: OutPoint,
    /// Its value.
    pub value: Amount,
    /// The weight its input adds (outpoint, sequence, script sig length and witness).
    pub input_weight: Weight,
}

/// The weight of a P2WPKH input: 41 bytes × 4, plus a witness of a 72-byte signature and a
/// 33-byte key (with counts): 164 + 108 = 272 WU.
pub const P2WPKH_INPUT_WEIGHT: Weight = Weight::from_wu(272);
/// The weight of a P2TR key-path input: 164 + a 64-byte signature witness (66) = 230 WU.
pub const P2TR_INPUT_WEIGHT: Weight = Weight::from_wu(230);

/// What the transaction around the selected coins looks like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SelectionParams {
    /// What the outputs pay.
    pub target: Amount,
    /// The fee rate to pay.
    pub fee_rate: FeeRate,
    /// The weight of the transaction without inputs and without change.
    pub base_weight: Weight,
    /// The weight a change output adds.
    pub change_weight: Weight,
    /// The weight of the input that would later spend the change (for its cost).
    pub change_spend_weight: Weight,
    /// Change below this is given to the fee.
    pub dust_limit: Amount,
    /// How many of the first candidates must be spent (coins whose assets a transfer moves).
    pub must_spend: usize,
}

/// The coins chosen, and what is left over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection {
    /// Indexes into the candidates, in the order given.
    pub selected: Vec<usize>,
    /// The change output's value, when there is one.
    pub change: Option<Amount>,
    /// The fee the transaction pays.
    pub fee: Amount,
}

/// Why no selection pays the target.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SelectionError {
    /// The coins, after their fees, are worth less than needed.
    InsufficientFunds { needed: Amount, available: Amount },
}

impl fmt::Display for SelectionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SelectionError::InsufficientFunds { needed, available } => write!(
                f,
                "insufficient funds: {needed} needed with fees, {available} spendable"
            ),
        }
    }
}

impl std::error::Error for SelectionError {}

fn fee_for(rate: FeeRate, weight: Weight) -> u64 {
    rate.fee_wu(weight).map_or(u64::MAX, Amount::to_sat)
}

/// Chooses coins among `candidates` for `params`. The first `params.must_spend` candidates
/// are always part of the selection.
pub fn select_coins(
    candidates: &[Candidate],
    params: &SelectionParams,
) -> Result<Selection, SelectionError> {
    let fee = |weight| fee_for(params.fee_rate, weight);
    let must_spend = params.must_spend.min(candidates.len());
    let required_value: u64 = candidates[..must_spend]
        .iter()
        .map(|coin| coin.value.to_sat())
        .sum();
    let required_fees: u64 = candidates[..must_spend]
        .iter()
        .map(|coin| fee(coin.input_weight))
        .sum();
    let needed_total = params
        .target
        .to_sat()
        .saturating_add(fee(params.base_weight))
        .saturating_add(required_fees);
    let change_fee = fee(params.change_weight);
    let required: Vec<usize> = (0..must_spend).collect();
    // What the optional coins must add, after paying for their own inputs.
    let Some(needed) = needed_total
        .checked_sub(required_value)
        .filter(|needed| *needed > 0)
    else {
        // The required coins pay for everything.
        let surplus = required_value - needed_total;
        let change = surplus.saturating_sub(change_fee);
        let change =
            (surplus >= change_fee && change >= params.dust_limit.to_sat()).then_some(change);
        return Ok(finish(required, candidates, params.target, change));
    };
    let mut pool: Vec<(usize, u64)> = candidates
        .iter()
        .enumerate()
        .skip(must_spend)
        .filter_map(|(index, coin)| {
            let effective = coin.value.to_sat().checked_sub(fee(coin.input_weight))?;
            (effective > 0).then_some((index, effective))
        })
        .collect();
    pool.sort_unstable_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let available: u64 = pool.iter().map(|(_, value)| value).sum();
    if available < needed {
        return Err(SelectionError::InsufficientFunds {
            needed: Amount::from_sat(needed_total),
            available: Amount::from_sat(available + required_value.saturating_sub(required_fees)),
        });
    }
    let cost_of_change = change_fee.saturating_add(fee(params.change_spend_weight));
    if let Some(chosen) = branch_and_bound(&pool, needed, cost_of_change) {
        let selected = required.into_iter().chain(chosen).collect();
        return Ok(finish(selected, candidates, params.target, None));
    }
    // Largest first, leaving room for a change output.
    let with_change = needed.saturating_add(change_fee);
    let mut selected = required;
    let mut effective = 0u64;
    for &(index, value) in &pool {
        selected.push(index);
        effective += value;
        if effective >= with_change {
            break;
        }
    }
    let change = effective
        .checked_sub(with_change)
        .filter(|change| *change >= params.dust_limit.to_sat());
    // Without change worth making, everything above the target is fee.
    Ok(finish(selected, candidates, params.target, change))
}

fn finish(
    mut selected: Vec<usize>,
    candidates: &[Candidate],
    target: Amount,
    change: Option<u64>,
) -> Selection {
    selected.sort_unstable();
    let total: u64 = selected.iter().map(|&i| candidates[i].value.to_sat()).sum();
    let change_value = change.unwrap_or(0);
    Selection {
        selected,
        change: change.map(Amount::from_sat),
        fee: Amount::from_sat(total - target.to_sat() - change_value),
    }
}

/// Depth-first search over `pool` (sorted by value, largest first) for a subset whose sum lies
/// in `[needed, needed + slack]`, preferring the least waste; `None` if none is found in budget.
fn branch_and_bound(pool: &[(usize, u64)], needed: u64, slack: u64) -> Option<Vec<usize>> {
    let upper = needed.saturating_add(slack);
    let mut remaining: Vec<u64> = vec![0; pool.len() + 1];
    for i in (0..pool.len()).rev() {
        remaining[i] = remaining[i + 1] + pool[i].1;
    }
    let mut best: Option<(u64, Vec<bool>)> = None;
    let mut chosen = vec![false; pool.len()];
    let mut sum = 0u64;
    let mut depth = 0usize;
    let mut tries = 0;
    // Iterative DFS: at each depth try "include" first, then "exclude".
    loop {
        tries += 1;
        let backtrack = if tries > BNB_TRIES {
            break;
        } else if sum > upper || sum + remaining[depth] < needed {
            true
        } else if sum >= needed {
            let waste = sum - needed;
            if best
                .as_ref()
                .is_none_or(|(best_waste, _)| waste < *best_waste)
            {
                best = Some((waste, chosen.clone()));
                if waste == 0 {
                    break;
                }
            }
            true
        } else {
            depth == pool.len()
        };
        if backtrack {
            // Undo trailing exclusions, then turn the last inclusion into an exclusion.
            loop {
                if depth == 0 {
                    return best.map(|(_, chosen)| pick(pool, &chosen));
                }
                depth -= 1;
                if chosen[depth] {
                    chosen[depth] = false;
                    sum -= pool[depth].1;
                    depth += 1;
                    break;
                }
            }
        } else {
            chosen[depth] = true;
            sum += pool[depth].1;
            depth += 1;
        }
    }
    best.map(|(_, chosen)| pick(pool, &chosen))
}

fn pick(pool: &[(usize, u64)], chosen: &[bool]) -> Vec<usize> {
    pool.iter()
        .zip(chosen)
        .filter(|(_, &c)| c)
        .map(|((index, _), _)| *index)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use bitcoin::hashes::Hash;

    fn coins(values: &[u64]) -> Vec<Candidate> {
        values
            .iter()
            .enumerate()
            .map(|(i, &value)| Candidate {
                outpoint: OutPoint::new(bitcoin::Txid::from_byte_array([i as u8; 32]), 0),
                value: Amount::from_sat(value),
                input_weight: P2WPKH_INPUT_WEIGHT,
            })
            .collect()
    }

    fn params(target: u64, sat_per_vb: u64) -> SelectionParams {
        SelectionParams {
            target: Amount::from_sat(target),
            fee_rate: FeeRate::from_sat_per_kwu(sat_per_vb * 250),
            base_weight: Weight::from_wu(4 * 10 + 4 * 31 + 2),
            change_weight: Weight::from_wu(4 * 31),
            change_spend_weight: P2WPKH_INPUT_WEIGHT,
            dust_limit: Amount::from_sat(294),
            must_spend: 0,
        }
    }

    #[test]
    fn an_exact_match_needs_no_change() {
        // Target 10,000 at 1 sat/vB: base 42 vB, input 68 vB -> a 10,110 coin is exact.
        let candidates = coins(&[50_000, 10_110, 7_000]);
        let selection = select_coins(&candidates, &params(10_000, 1)).unwrap();
        assert_eq!(selection.selected, [1]);
        assert_eq!(selection.change, None);
        assert_eq!(selection.fee, Amount::from_sat(110));
    }

    #[test]
    fn a_combination_can_be_changeless() {
        // Effective values 6,000 + 4,042 = the target plus the base fee of 42; the big coin
        // alone would need change.
        let candidates = coins(&[100_000, 6_068, 4_110]);
        let selection = select_coins(&candidates, &params(10_000, 1)).unwrap();
        assert_eq!(selection.selected, [1, 2]);
        assert_eq!(selection.change, None);
        assert_eq!(selection.fee, Amount::from_sat(178));
    }

    #[test]
    fn without_a_match_the_largest_coins_pay_with_change() {
        let candidates = coins(&[30_000, 80_000, 5_000]);
        let selection = select_coins(&candidates, &params(50_000, 2)).unwrap();
        assert_eq!(selection.selected, [1]);
        let change = selection.change.unwrap();
        // Fee at 500 sat/kWU: base 166 WU (83) + input 272 WU (136) + change 124 WU (62).
        assert_eq!(selection.fee, Amount::from_sat(281));
        assert_eq!(change, Amount::from_sat(80_000 - 50_000 - 281));
    }

    #[test]
    fn dust_change_goes_to_the_fee() {
        let candidates = coins(&[10_300]);
        let selection = select_coins(&candidates, &params(10_000, 1)).unwrap();
        assert_eq!(selection.change, None);
        assert_eq!(selection.fee, Amount::from_sat(300));
    }

    #[test]
    fn required_coins_are_always_spent() {
        // A small coin that must be spent (it carries assets) plus whatever pays the rest.
        let candidates = coins(&[1_000, 80_000, 30_000]);
        let forced = SelectionParams {
            must_spend: 1,
            ..params(20_000, 1)
        };
        let selection = select_coins(&candidates, &forced).unwrap();
        assert!(selection.selected.contains(&0));
        let total: u64 = selection
            .selected
            .iter()
            .map(|&i| candidates[i].value.to_sat())
            .sum();
        assert_eq!(
            total,
            20_000 + selection.fee.to_sat() + selection.change.map_or(0, Amount::to_sat)
        );
        // When the required coins cover everything, nothing else is taken.
        let rich = SelectionParams {
            must_spend: 1,
            ..params(500, 1)
        };
        let selection = select_coins(&candidates, &rich).unwrap();
        assert_eq!(selection.selected, [0]);
        // 1,000 - 500 - fees (base 42, input 68, change 31) = 359 of change.
        assert_eq!(selection.change, Some(Amount::from_sat(359)));
        assert_eq!(selection.fee, Amount::from_sat(141));
    }

    #[test]
    fn too_little_says_how_much() {
        let candidates = coins(&[1_000, 2_000]);
        assert_eq!(
            select_coins(&candidates, &params(10_000, 1)),
            Err(SelectionError::InsufficientFunds {
                needed: Amount::from_sat(10_042),
                available: Amount::from_sat(932 + 1_932),
            })
        );
        // Coins worth less than their own input fee are left out.
        let tiny = coins(&[60]);
        assert!(select_coins(&tiny, &params(1, 1)).is_err());
    }

    #[test]
    fn every_selection_balances() {
        let values = [1_234, 98_765, 5_555, 42_000, 777, 15_000, 300, 64_000];
        let candidates = coins(&values);
        for target in [1_000u64, 5_000, 20_000, 60_000, 150_000, 200_000] {
            for rate in [1, 3, 20] {
                let Ok(selection) = select_coins(&candidates, &params(target, rate)) else {
                    continue;
                };
                let total: u64 = selection
                    .selected
                    .iter()
                    .map(|&i| candidates[i].value.to_sat())
                    .sum();
                let change = selection.change.map_or(0, Amount::to_sat);
                assert_eq!(
                    total,
                    target + selection.fee.to_sat() + change,
                    "{target} at {rate}"
                );
                let inputs_weight = P2WPKH_INPUT_WEIGHT * selection.selected.len() as u64;
                let change_weight = if selection.change.is_some() {
                    Weight::from_wu(124)
                } else {
                    Weight::ZERO
                };
                let minimum = fee_for(
                    FeeRate::from_sat_per_kwu(rate * 250),
                    params(0, 0).base_weight + inputs_weight + change_weight,
                );
                assert!(
                    selection.fee.to_sat() >= minimum,
                    "pays at least its fee rate"
                );
                assert!(
                    selection.change.is_none_or(|c| c.to_sat() >= 294),
                    "no dust change"
                );
            }
        }
    }
}
