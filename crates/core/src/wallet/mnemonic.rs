//! BIP39 mnemonics in English: creating one from entropy the driver drew, and restoring one a
//! person typed, with the exact reason when it is not valid.

use core::fmt;

use bip39::Language;
pub use bip39::Mnemonic;

/// How many words a new mnemonic has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WordCount {
    /// 12 words: 128 bits of entropy.
    Twelve,
    /// 24 words: 256 bits of entropy.
    TwentyFour,
}

impl WordCount {
    /// The bytes of entropy this many words encode.
    pub fn entropy_len(self) -> usize {
        match self {
            WordCount::Twelve => 16,
            WordCount::TwentyFour => 32,
        }
    }
}

/// Why a mnemonic cannot be created or restored.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MnemonicError {
    /// The entropy is not 16 or 32 bytes.
    EntropyLength(usize),
    /// BIP39 phrases have 12, 15, 18, 21 or 24 words.
    WordCount(usize),
    /// A word is not in the English list; `position` counts from 1.
    UnknownWord { position: usize, word: String },
    /// The words are all valid but their checksum is not: a word is wrong or out of order.
    BadChecksum,
}

impl fmt::Display for MnemonicError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MnemonicError::EntropyLength(len) => {
                write!(f, "a new mnemonic needs 16 or 32 bytes of entropy, not {len}")
            }
            MnemonicError::WordCount(count) => {
                write!(f, "a recovery phrase has 12, 15, 18, 21 or 24 words, not {count}")
            }
            MnemonicError::UnknownWord { position, word } => {
                write!(f, "word {position}, \"{word}\", is not in the BIP39 English word list")
            }
            MnemonicError::BadChecksum => f.write_str(
                "the words do not form a valid phrase (checksum mismatch): check their spelling and order",
            ),
        }
    }
}

impl std::error::Error for MnemonicError {}

/// A new mnemonic encoding `entropy` (16 bytes: 12 words; 32 bytes: 24 words).
pub fn from_entropy(entropy: &[u8]) -> Result<Mnemonic, MnemonicError> {
    if entropy.len() != 16 && entropy.len() != 32 {
        return Err(MnemonicError::EntropyLength(entropy.len()));
    }
    Mnemonic::from_entropy_in(Language::English, entropy)
        .map_err(|_| MnemonicError::EntropyLength(entropy.len()))
}

/// Restores a mnemonic from a phrase. Case and surrounding or repeated whitespace are forgiven.
pub fn parse(phrase: &str) -> Result<Mnemonic, MnemonicError> {
    let normalized = phrase
        .split_whitespace()
        .map(str::to_lowercase)
        .collect::<Vec<_>>();
    let joined = normalized.join(" ");
    Mnemonic::parse_in_normalized(Language::English, &joined).map_err(|err| match err {
        bip39::Error::BadWordCount(count) => MnemonicError::WordCount(count),
        bip39::Error::UnknownWord(index) => MnemonicError::UnknownWord {
            position: index + 1,
            word: normalized.get(index).cloned().unwrap_or_default(),
        },
        bip39::Error::InvalidChecksum => MnemonicError::BadChecksum,
        bip39::Error::BadEntropyBitCount(_) => MnemonicError::WordCount(normalized.len()),
        bip39::Error::AmbiguousLanguages(_) => MnemonicError::BadChecksum,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ABOUT: &str = "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about";

    #[test]
    fn entropy_gives_twelve_or_twenty_four_words() {
        assert_eq!(from_entropy(&[0; 16]).unwrap().to_string(), ABOUT);
        assert_eq!(from_entropy(&[0; 32]).unwrap().word_count(), 24);
        assert_eq!(
            from_entropy(&[0; 20]),
            Err(MnemonicError::EntropyLength(20))
        );
        assert_eq!(WordCount::TwentyFour.entropy_len(), 32);
    }

    #[test]
    fn typing_mistakes_are_forgiven_but_errors_are_named() {
        let sloppy = format!("  {}  ", ABOUT.to_uppercase().replace(' ', "   "));
        assert_eq!(parse(&sloppy).unwrap().to_string(), ABOUT);

        assert_eq!(parse("abandon abandon"), Err(MnemonicError::WordCount(2)));
        let typo = ABOUT
            .replacen("abandon", "abandonn", 3)
            .replacen("abandonn", "abandon", 2);
        assert_eq!(
            parse(&typo),
            Err(MnemonicError::UnknownWord {
                position: 3,
                word: "abandonn".into()
            })
        );
        let swapped = ABOUT.replace("about", "abandon");
        assert_eq!(parse(&swapped), Err(MnemonicError::BadChecksum));
        assert!(MnemonicError::UnknownWord {
            position: 3,
            word: "abandonn".into()
        }
        .to_string()
        .contains("word 3, \"abandonn\""));
    }
}
