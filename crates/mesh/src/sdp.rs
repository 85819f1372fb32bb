//! The DTLS fingerprint of a session description: what the hello binds a peer id to.
//! WebRTC stacks put it in the SDP as `a=fingerprint:sha-256 AB:CD:...` (RFC 8122).

use core::fmt;

use bitmesh_core::wire::Fingerprint;

/// Why a session description gives no fingerprint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SdpError {
    /// No `a=fingerprint:sha-256` line.
    Missing,
    /// The line's value is not 32 colon-separated hex bytes.
    Malformed(String),
    /// Two different SHA-256 fingerprints (one certificate is expected).
    Conflicting,
}

impl fmt::Display for SdpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SdpError::Missing => f.write_str("the session description has no SHA-256 fingerprint"),
            SdpError::Malformed(value) => write!(f, "a malformed SHA-256 fingerprint: {value}"),
            SdpError::Conflicting => {
                f.write_str("the session description has two different SHA-256 fingerprints")
            }
        }
    }
}

impl std::error::Error for SdpError {}

/// The SHA-256 DTLS fingerprint of `sdp` (session or media level; they must agree).
pub fn fingerprint(sdp: &str) -> Result<Fingerprint, SdpError> {
    let mut found: Option<Fingerprint> = None;
    for line in sdp.lines() {
        let Some(value) = line.trim_end().strip_prefix("a=fingerprint:") else {
            continue;
        };
        let Some((algorithm, hex)) = value.split_once(' ') else {
            return Err(SdpError::Malformed(value.into()));
        };
        if !algorithm.eq_ignore_ascii_case("sha-256") {
            continue;
        }
        let parsed = parse(hex.trim()).ok_or_else(|| SdpError::Malformed(hex.into()))?;
        match found {
            Some(previous) if previous != parsed => return Err(SdpError::Conflicting),
            _ => found = Some(parsed),
        }
    }
    found.ok_or(SdpError::Missing)
}

fn parse(hex: &str) -> Option<Fingerprint> {
    let mut out = [0u8; 32];
    let mut parts = hex.split(':');
    for byte in &mut out {
        let part = parts.next()?;
        if part.len() != 2 {
            return None;
        }
        *byte = u8::from_str_radix(part, 16).ok()?;
    }
    parts.next().is_none().then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHROMIUM: &str = "v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n\
a=group:BUNDLE 0\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\nc=IN IP4 0.0.0.0\r\n\
a=ice-ufrag:abcd\r\na=ice-pwd:0123456789abcdef012345\r\n\
a=fingerprint:sha-256 8B:2B:46:A6:AE:BC:D8:21:0B:2F:42:D4:9A:B0:6F:1E:57:8E:5C:63:7E:45:0B:37:0F:A1:92:F0:8A:55:4C:D1\r\n\
a=setup:actpass\r\na=mid:0\r\na=sctp-port:5000\r\n";

    #[test]
    fn the_sha256_fingerprint_of_a_browser_offer() {
        let fingerprint = fingerprint(CHROMIUM).expect("present");
        assert_eq!(fingerprint[0], 0x8b);
        assert_eq!(fingerprint[31], 0xd1);
    }

    #[test]
    fn missing_malformed_and_conflicting_fingerprints_are_refused() {
        assert_eq!(fingerprint("v=0\r\n"), Err(SdpError::Missing));
        assert!(matches!(
            fingerprint("a=fingerprint:sha-256 8B:2B\r\n"),
            Err(SdpError::Malformed(_))
        ));
        let line = CHROMIUM
            .lines()
            .find(|l| l.starts_with("a=fingerprint"))
            .unwrap();
        let other = line.replace("8B:2B", "8B:2C");
        assert_eq!(
            fingerprint(&format!("{line}\r\n{other}\r\n")),
            Err(SdpError::Conflicting)
        );
        // Other algorithms are skipped.
        assert_eq!(
            fingerprint("a=fingerprint:sha-1 AA:BB\r\n"),
            Err(SdpError::Missing)
        );
    }
}
