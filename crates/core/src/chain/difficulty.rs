//! Difficulty adjustment: ASERT (aserti3-2d), recomputed at every block.
//!
//! The target of the next block is the anchor's target scaled by 2 to the power of how far the
//! chain runs behind (or ahead of) an ideal schedule of one block per target spacing, divided by
//! a half-life: a chain one half-life ahead of schedule has half the anchor's target (twice the
//! difficulty). This follows Bitcoin Cash's aserti3-2d specification exactly, integer for integer
//! (a cubic approximation of 2^x on 16 fractional bits), with the genesis block as anchor.
//! Because the schedule is absolute, errors never accumulate: after any change of hash rate the
//! chain returns to one block per spacing on average.

use bitcoin::{CompactTarget, Target};
use ruint::aliases::U320;

use super::Params;

/// The block the schedule is anchored to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Anchor {
    /// The anchor block's height.
    pub height: u32,
    /// The timestamp of the anchor block's parent.
    pub parent_time: i64,
    /// The anchor block's target.
    pub bits: CompactTarget,
}

/// The constants of one ASERT schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    /// The ideal time between blocks, in seconds.
    pub spacing_secs: i64,
    /// How far ahead of schedule (in seconds) halves the target.
    pub half_life_secs: i64,
    /// The easiest allowed target.
    pub pow_limit: Target,
}

impl Schedule {
    /// The schedule of a bitmesh network.
    pub fn of(params: &Params) -> Schedule {
        Schedule {
            spacing_secs: i64::from(params.target_spacing_secs),
            half_life_secs: i64::from(params.asert_half_life_secs),
            pow_limit: params.pow_limit(),
        }
    }
}

impl Anchor {
    /// A bitmesh network's anchor: its genesis block, as if its parent came one spacing earlier,
    /// so that block 1 on schedule keeps the genesis target.
    pub fn genesis(params: &Params, genesis_time: u32) -> Anchor {
        Anchor {
            height: 0,
            parent_time: i64::from(genesis_time) - i64::from(params.target_spacing_secs),
            bits: CompactTarget::from_consensus(params.pow_limit_bits),
        }
    }
}

/// The `bits` the block after the block at (`height`, `time`) must carry.
pub fn next_bits(anchor: &Anchor, schedule: &Schedule, height: u32, time: i64) -> CompactTarget {
    let anchor_target = to_wide(Target::from_compact(anchor.bits));
    let pow_limit = to_wide(schedule.pow_limit);

    let time_delta = i128::from(time) - i128::from(anchor.parent_time);
    let height_delta = i128::from(height) - i128::from(anchor.height);
    let behind = time_delta - i128::from(schedule.spacing_secs) * (height_delta + 1);
    // Rounds toward zero, as the reference's 64-bit signed division does.
    let exponent = behind * 65_536 / i128::from(schedule.half_life_secs);
    let shifts = exponent >> 16; // floor
    let frac = (exponent & 0xffff) as u128;
    // 2^(frac / 65536) * 65536, to within 0.013 %; fits in 64 bits for every frac < 65536.
    let factor = 65_536
        + ((195_766_423_245_049 * frac
            + 971_821_376 * frac * frac
            + 5_127 * frac * frac * frac
            + (1 << 47))
            >> 48);

    let mut next = anchor_target * U320::from(factor);
    if shifts <= 0 {
        let right = (-shifts).min(320) as usize;
        next = if right >= 320 {
            U320::ZERO
        } else {
            next >> right
        };
    } else {
        let left = shifts.min(320) as usize;
        let shifted = if left >= 320 {
            U320::ZERO
        } else {
            next << left
        };
        // Bits pushed out of the top mean a target far above the limit.
        next = if left >= 320 || shifted >> left != next {
            pow_limit << 16
        } else {
            shifted
        };
    }
    next >>= 16;
    let next = next.clamp(U320::from(1u8), pow_limit);
    from_wide(next).to_compact_lossy()
}

fn to_wide(target: Target) -> U320 {
    U320::from_le_slice(&target.to_le_bytes())
}

fn from_wide(value: U320) -> Target {
    let bytes = value.to_le_bytes::<40>();
    let mut low = [0u8; 32];
    low.copy_from_slice(&bytes[..32]);
    debug_assert!(
        bytes[32..].iter().all(|&byte| byte == 0),
        "clamped to the pow limit"
    );
    Target::from_le_bytes(low)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::genesis::GENESIS_TIME;
    use crate::Network;

    fn local() -> (Anchor, Schedule) {
        let params = Network::Local.params();
        (Anchor::genesis(params, GENESIS_TIME), Schedule::of(params))
    }

    /// A schedule whose limit is far above the anchor, so scaling both ways is visible.
    fn roomy() -> (Anchor, Schedule) {
        let anchor = Anchor {
            height: 0,
            parent_time: 0,
            bits: CompactTarget::from_consensus(0x1d00_ffff),
        };
        let schedule = Schedule {
            spacing_secs: 600,
            half_life_secs: 172_800,
            pow_limit: Target::from_compact(CompactTarget::from_consensus(0x207f_ffff)),
        };
        (anchor, schedule)
    }

    fn target(bits: CompactTarget) -> Target {
        Target::from_compact(bits)
    }

    /// Mean block spacing, in seconds, of `blocks` blocks mined at `hash_rate` hashes/s,
    /// continuing the chain `(height, time)`; block times are drawn from the exponential
    /// distribution a real search produces.
    fn mine(
        chain: &mut (u32, i64),
        blocks: u32,
        hash_rate: f64,
        rng: &mut SplitMix,
        (anchor, schedule): (&Anchor, &Schedule),
    ) -> f64 {
        let start = chain.1;
        for _ in 0..blocks {
            let bits = next_bits(anchor, schedule, chain.0, chain.1);
            let expected_hashes = 2f64.powi(256) / target_f64(target(bits));
            let interval = -(1.0 - rng.next_f64()).ln() * expected_hashes / hash_rate;
            *chain = (chain.0 + 1, chain.1 + interval.round() as i64);
        }
        (chain.1 - start) as f64 / f64::from(blocks)
    }

    fn target_f64(target: Target) -> f64 {
        target
            .to_le_bytes()
            .iter()
            .rev()
            .fold(0.0, |acc, &byte| acc * 256.0 + f64::from(byte))
    }

    /// A small deterministic generator, so the simulation is the same on every run.
    struct SplitMix(u64);

    impl SplitMix {
        fn next_f64(&mut self) -> f64 {
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            (z ^ (z >> 31)) as f64 / u64::MAX as f64
        }
    }

    #[test]
    fn spacing_stays_within_ten_percent_when_hash_rate_jumps_tenfold_and_back() {
        let (anchor, schedule) = local();
        let spacing = schedule.spacing_secs as f64;
        // A hash rate that finds blocks at the limit target 20 times too fast.
        let base = 20.0 * 2f64.powi(256) / target_f64(schedule.pow_limit) / spacing;
        for seed in 1..=5 {
            let mut rng = SplitMix(seed);
            let mut chain = (0u32, i64::from(GENESIS_TIME));
            let context = (&anchor, &schedule);
            mine(&mut chain, 2_000, base, &mut rng, context); // settle
            let after_jump = mine(&mut chain, 2_000, base * 10.0, &mut rng, context);
            let after_drop = mine(&mut chain, 2_000, base, &mut rng, context);
            eprintln!("seed {seed}: mean spacing {after_jump:.2} s after x10, {after_drop:.2} s after /10");
            for (phase, mean) in [("x10", after_jump), ("/10", after_drop)] {
                let error = (mean - spacing).abs() / spacing;
                assert!(
                    error < 0.10,
                    "seed {seed}, hash rate {phase}: mean spacing {mean:.2} s"
                );
            }
        }
    }

    #[test]
    fn on_schedule_the_target_stays() {
        let (anchor, schedule) = local();
        let genesis = i64::from(GENESIS_TIME);
        for height in [0u32, 1, 10, 1000] {
            let time = genesis + i64::from(height) * schedule.spacing_secs;
            assert_eq!(
                next_bits(&anchor, &schedule, height, time),
                anchor.bits,
                "height {height}"
            );
        }
    }

    #[test]
    fn one_half_life_ahead_halves_the_target_exactly() {
        let (anchor, schedule) = roomy();
        // Block 288 arrives at the time block 0 was due: one half-life (288 blocks) ahead.
        let bits = next_bits(&anchor, &schedule, 287, 0);
        assert_eq!(bits, CompactTarget::from_consensus(0x1c7f_ff80));
        let two_ahead = next_bits(&anchor, &schedule, 287 + 288, 0);
        assert_eq!(two_ahead, CompactTarget::from_consensus(0x1c3f_ffc0));
    }

    #[test]
    fn one_half_life_behind_doubles_the_target_exactly() {
        let (anchor, schedule) = roomy();
        let bits = next_bits(&anchor, &schedule, 0, 600 + 172_800);
        assert_eq!(bits, CompactTarget::from_consensus(0x1d01_fffe));
    }

    #[test]
    fn the_target_never_exceeds_the_limit_or_reaches_zero() {
        let (anchor, schedule) = local();
        let limit = anchor.bits;
        // Far behind schedule: clamped to the limit.
        let late = next_bits(&anchor, &schedule, 5, i64::from(u32::MAX) * 4);
        assert_eq!(late, limit);
        // Absurdly far ahead: the smallest target, never zero.
        let early = next_bits(&anchor, &schedule, u32::MAX, i64::from(GENESIS_TIME));
        assert_eq!(
            target(early),
            Target::from_le_bytes({
                let mut one = [0u8; 32];
                one[0] = 1;
                one
            })
        );
    }

    #[test]
    fn ahead_of_schedule_is_harder_and_behind_is_easier_monotonically() {
        let (anchor, schedule) = roomy();
        let mut previous = target(next_bits(&anchor, &schedule, 100, -10_000_000));
        for time in (-10_000_000..10_000_000).step_by(99_991) {
            let current = target(next_bits(&anchor, &schedule, 100, time));
            assert!(current >= previous, "time {time}");
            previous = current;
        }
    }
}
