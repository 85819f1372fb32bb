//! Mining: the nonce search (`sha256d`: two nonces at a time with SHA-NI).

pub mod sha256d;
