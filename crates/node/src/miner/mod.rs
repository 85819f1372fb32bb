//! Mining: worker threads search nonces of the current block template (`sha256d`: two nonces
//! at a time with SHA-NI) and hand back solved blocks. The node's peer gives them new work when
//! the tip changes or the template ages; a new piece of work stops every search of the old one
//! within one chunk of nonces.

pub mod sha256d;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};

use bitcoin::Block;

use self::sha256d::HeaderMidstate;

/// Nonces a worker searches between two looks at whether its work is still current (~50 ms).
const CHUNK: u32 = 1 << 20;

/// A solved block, with the work it was found for.
pub type Found = (u64, Block);

#[derive(Default)]
struct Shared {
    /// The work: its number (bumped on every change) and the block to solve.
    work: Mutex<(u64, Option<Block>)>,
    changed: Condvar,
    epoch: AtomicU64,
    /// The last work solved: the others stop searching it, and only one solution is reported.
    solved: AtomicU64,
    hashes: AtomicU64,
    stopped: std::sync::atomic::AtomicBool,
}

/// The mining workers.
pub struct Miner {
    shared: Arc<Shared>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Miner {
    /// Starts `threads` workers; each solution goes to `found` (the work's number, the block).
    pub fn start(threads: usize, found: impl Fn(Found) + Send + Sync + 'static) -> Miner {
        let shared = Arc::new(Shared::default());
        let found = Arc::new(found);
        let threads = (0..threads)
            .map(|index| {
                let (shared, found, count) = (shared.clone(), found.clone(), threads);
                std::thread::Builder::new()
                    .name(format!("miner-{index}"))
                    .spawn(move || work(&shared, index as u32, count as u32, &*found))
                    .expect("a thread")
            })
            .collect();
        Miner { shared, threads }
    }

    /// Replaces the work (the block to solve, nonce ignored); returns its number.
    pub fn set_work(&self, block: Block) -> u64 {
        let mut work = self.shared.work.lock().expect("not poisoned");
        work.0 += 1;
        work.1 = Some(block);
        self.shared.epoch.store(work.0, Ordering::SeqCst);
        self.shared.changed.notify_all();
        work.0
    }

    /// Header hashes tried so far.
    pub fn hashes(&self) -> u64 {
        self.shared.hashes.load(Ordering::Relaxed)
    }
}

impl Drop for Miner {
    fn drop(&mut self) {
        self.shared.stopped.store(true, Ordering::SeqCst);
        {
            let mut work = self.shared.work.lock().expect("not poisoned");
            work.0 += 1;
            self.shared.epoch.store(work.0, Ordering::SeqCst);
        }
        self.shared.changed.notify_all();
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

/// Worker `index` of `count`: searches the nonces `index·CHUNK + k·count·CHUNK…` of the current
/// work until it is solved (by any worker), replaced, or its nonces run out.
fn work(shared: &Shared, index: u32, count: u32, found: &(dyn Fn(Found) + Send + Sync)) {
    let mut done = 0u64;
    loop {
        let (epoch, block) = {
            let mut work = shared.work.lock().expect("not poisoned");
            while work.0 == done || work.1.is_none() {
                if shared.stopped.load(Ordering::SeqCst) {
                    return;
                }
                work = shared.changed.wait(work).expect("not poisoned");
            }
            (work.0, work.1.clone().expect("checked"))
        };
        if shared.stopped.load(Ordering::SeqCst) {
            return;
        }
        done = epoch;
        let midstate = HeaderMidstate::new(&block.header);
        let mut start = u64::from(index) * u64::from(CHUNK);
        let current = || {
            shared.epoch.load(Ordering::Relaxed) == epoch
                && shared.solved.load(Ordering::Relaxed) != epoch
        };
        while start <= u64::from(u32::MAX) && current() {
            let end = (start + u64::from(CHUNK) - 1).min(u64::from(u32::MAX));
            let solved = midstate.search(start as u32..=end as u32);
            shared.hashes.fetch_add(end - start + 1, Ordering::Relaxed);
            if let Some(nonce) = solved {
                if shared.solved.fetch_max(epoch, Ordering::SeqCst) < epoch {
                    let mut block = block.clone();
                    block.header.nonce = nonce;
                    found((epoch, block));
                }
                break;
            }
            start += u64::from(count) * u64::from(CHUNK);
        }
    }
}

#[cfg(test)]
mod tests {
    use bitcoin::block::{Header, Version};
    use bitcoin::hashes::Hash;
    use bitcoin::{BlockHash, CompactTarget, TxMerkleNode};

    use super::*;

    fn block(bits: u32, tag: u8) -> Block {
        Block {
            header: Header {
                version: Version::TWO,
                prev_blockhash: BlockHash::from_byte_array([tag; 32]),
                merkle_root: TxMerkleNode::from_byte_array([9; 32]),
                time: 1_700_000_000,
                bits: CompactTarget::from_consensus(bits),
                nonce: 0,
            },
            txdata: vec![],
        }
    }

    #[test]
    fn workers_solve_each_piece_of_work_once() {
        let (sender, receiver) = std::sync::mpsc::channel();
        let sender = Mutex::new(sender);
        let miner = Miner::start(2, move |found| {
            let _ = sender.lock().unwrap().send(found);
        });
        // About one nonce in 65,536 meets this target.
        for tag in 1..=3u8 {
            let epoch = miner.set_work(block(0x1f00_ffff, tag));
            let (solved_epoch, solved) = receiver
                .recv_timeout(std::time::Duration::from_secs(30))
                .expect("a solution in time");
            assert_eq!(solved_epoch, epoch);
            assert_eq!(
                solved.header.prev_blockhash,
                BlockHash::from_byte_array([tag; 32])
            );
            assert!(solved.header.target().is_met_by(solved.block_hash()));
        }
        assert!(miner.hashes() > 0);
        drop(miner);
        assert!(
            receiver.try_recv().is_err(),
            "one solution per piece of work"
        );
    }

    #[test]
    fn new_work_stops_the_search_of_the_old() {
        let (sender, receiver) = std::sync::mpsc::channel();
        let sender = Mutex::new(sender);
        let miner = Miner::start(2, move |found| {
            let _ = sender.lock().unwrap().send(found);
        });
        // No nonce meets this one: the workers search until told otherwise.
        miner.set_work(block(0x1d00_ffff, 1));
        let easy = miner.set_work(block(0x207f_ffff, 2));
        let (epoch, solved) = receiver
            .recv_timeout(std::time::Duration::from_secs(30))
            .expect("the new work is taken up");
        assert_eq!(epoch, easy);
        assert_eq!(
            solved.header.prev_blockhash,
            BlockHash::from_byte_array([2; 32])
        );
    }
}
