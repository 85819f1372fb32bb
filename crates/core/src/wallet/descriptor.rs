//! Output descriptors (BIP380-386) for exporting an account so that other wallets can watch it.

/// Appends the BIP380 checksum: `desc` becomes `desc#xxxxxxxx`. `None` if `desc` has a
/// character descriptors may not contain.
pub fn with_checksum(desc: &str) -> Option<String> {
    Some(format!("{desc}#{}", checksum(desc)?))
}

/// The 8-character BIP380 checksum of `desc`.
pub fn checksum(desc: &str) -> Option<String> {
    const INPUT: &str = "0123456789()[],'/*abcdefgh@:$%{}IJKLMNOPQRSTUVWXYZ&+-.;<=>?!^_|~ijklmnopqrstuvwxyzABCDEFGH`#\"\\ ";
    const OUTPUT: &[u8; 32] = b"qpzry9x8gf2tvdw0s3jn54khce6mua7l";
    let mut checksum = 1u64;
    let mut classes = Vec::with_capacity(3);
    for c in desc.chars() {
        let position = INPUT.find(c)? as u64;
        checksum = polymod(checksum, position & 31);
        classes.push(position >> 5);
        if classes.len() == 3 {
            checksum = polymod(checksum, classes[0] * 9 + classes[1] * 3 + classes[2]);
            classes.clear();
        }
    }
    match classes[..] {
        [a] => checksum = polymod(checksum, a),
        [a, b] => checksum = polymod(checksum, a * 3 + b),
        _ => {}
    }
    for _ in 0..8 {
        checksum = polymod(checksum, 0);
    }
    checksum ^= 1;
    Some(
        (0..8)
            .map(|i| char::from(OUTPUT[((checksum >> (5 * (7 - i))) & 31) as usize]))
            .collect(),
    )
}

fn polymod(checksum: u64, value: u64) -> u64 {
    const GENERATOR: [u64; 5] = [
        0xf5_dee5_1989,
        0xa9_fdca_3312,
        0x1b_ab10_e32d,
        0x37_06b1_677a,
        0x64_4d62_6ffd,
    ];
    let top = checksum >> 35;
    let mut next = ((checksum & 0x7_ffff_ffff) << 5) ^ value;
    for (bit, generator) in GENERATOR.iter().enumerate() {
        if (top >> bit) & 1 == 1 {
            next ^= generator;
        }
    }
    next
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bip380_checksums() {
        assert_eq!(
            with_checksum("raw(deadbeef)").as_deref(),
            Some("raw(deadbeef)#89f8spxm")
        );
        assert_eq!(
            checksum("addr(mkmZxiEcEd8ZqjQWVZuC6so5dFMKEFpN2j)").as_deref(),
            Some("02wpgw69")
        );
        assert_eq!(checksum("raw(deadbeef)\u{e9}"), None);
    }
}
