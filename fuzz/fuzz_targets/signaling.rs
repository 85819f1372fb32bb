//! Text as signaling messages: the server state machine, fed lines from three clients, never
//! panics and answers only in its protocol; the client state machine takes any text.
#![no_main]

use bitcoin::secp256k1::{Keypair, Secp256k1, SecretKey};
use bitmesh_mesh::signaling::{
    FromServer, ServerConfig, ServerInput, ServerOutput, SignalingClient, SignalingServer,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut server = SignalingServer::new(ServerConfig::new("test"));
    for client in 0..3 {
        server.handle(0, ServerInput::Opened { client, nonce: [client as u8; 32] });
    }
    let key = Keypair::from_secret_key(&Secp256k1::new(), &SecretKey::from_slice(&[7; 32]).unwrap());
    let mut client = SignalingClient::new(key, "test");
    for (n, line) in text.lines().enumerate() {
        let input = ServerInput::Text { client: (n % 3) as u64, text: line.to_owned() };
        for output in server.handle(n as u64, input) {
            if let ServerOutput::Send { text, .. } = output {
                let _: FromServer = serde_json::from_str(&text).expect("the server's protocol");
            }
        }
        let _ = client.on_text(line, &[0; 32]);
    }
    server.handle(u64::MAX / 2, ServerInput::Tick);
});
