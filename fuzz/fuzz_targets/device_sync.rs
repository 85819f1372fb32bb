//! Device-sync messages from a sibling (one that holds the seed, so its bytes pass the seal):
//! whatever the plaintext, the receiver refuses it in words or merges it, and never panics.
//! The first 8 bytes pick the counter, so replays and reorderings are explored too.
#![no_main]

use bitmesh_core::wallet::device_group::DeviceGroup;
use bitmesh_core::wallet::device_sync::DeviceSync;
use bitmesh_core::wallet::metadata::Metadata;
use bitmesh_core::wire::PeerId;
use bitmesh_core::Network;
use libfuzzer_sys::fuzz_target;

const NOW: u64 = 1_700_000_000_000;

fuzz_target!(|data: &[u8]| {
    let (me, sibling) = (PeerId([1; 32]), PeerId([2; 32]));
    let group = DeviceGroup::from_seed(&[7; 64], Network::Test);
    let mut sync = DeviceSync::new(DeviceGroup::from_seed(&[7; 64], Network::Test), me);
    let mut metadata = Metadata::new();
    for (n, message) in data.split(|byte| *byte == 0xff).enumerate() {
        let counter = n as u64 + 1;
        let sealed = group.seal(sibling, me, counter, [n as u8; 12], message);
        let _ = sync.receive(NOW, sibling, &sealed, &mut metadata, [n as u8; 32]);
        // And the bytes as they came, unsealed.
        let _ = sync.receive(NOW, sibling, message, &mut metadata, [0; 32]);
    }
    let _ = sync.take_outbox();
});
