//! Generation methods and their accepted spellings.

use std::fmt;
use std::str::FromStr;

use super::check_digit::CheckDigit;

/// How the generated part of a card number (or org-level external ID) is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    /// `DEFAULT` / `AUTO_INC`: the counter, zero-padded.
    AutoIncrement,
    /// `LUHN_ALGO` / `LUHNALGO`: the counter, zero-padded, then a Luhn digit.
    Luhn,
    /// `MOD7_ALGO`: the counter, zero-padded, then a mod-7 digit.
    Mod7,
    /// `RANDOM`: a keyed permutation of the counter.
    Random,
    /// `RANDOM_LUHN`: a keyed permutation of the counter, then a Luhn digit.
    RandomLuhn,
    /// `RANDOM_MOD7`: a keyed permutation of the counter, then a mod-7 digit.
    RandomMod7,
}

impl Method {
    /// Every method, in a stable order (for tests and help text).
    pub const ALL: [Method; 6] = [
        Method::AutoIncrement,
        Method::Luhn,
        Method::Mod7,
        Method::Random,
        Method::RandomLuhn,
        Method::RandomMod7,
    ];

    /// The check digit this method appends, if any.
    pub fn check_digit(self) -> Option<CheckDigit> {
        match self {
            Method::Luhn | Method::RandomLuhn => Some(CheckDigit::Luhn),
            Method::Mod7 | Method::RandomMod7 => Some(CheckDigit::Mod7),
            Method::AutoIncrement | Method::Random => None,
        }
    }

    /// Whether the counter goes through the keyed permutation.
    pub fn is_random(self) -> bool {
        matches!(self, Method::Random | Method::RandomLuhn | Method::RandomMod7)
    }

    /// The canonical spelling, as stored and printed.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::AutoIncrement => "DEFAULT",
            Method::Luhn => "LUHN_ALGO",
            Method::Mod7 => "MOD7_ALGO",
            Method::Random => "RANDOM",
            Method::RandomLuhn => "RANDOM_LUHN",
            Method::RandomMod7 => "RANDOM_MOD7",
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The text was not one of the accepted method spellings.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown generation method {0:?}: expected DEFAULT, AUTO_INC, LUHN_ALGO, LUHNALGO, MOD7_ALGO, RANDOM, RANDOM_LUHN or RANDOM_MOD7"
)]
pub struct UnknownMethod(pub String);

impl FromStr for Method {
    type Err = UnknownMethod;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.trim().to_ascii_uppercase().as_str() {
            "DEFAULT" | "AUTO_INC" => Ok(Method::AutoIncrement),
            "LUHN_ALGO" | "LUHNALGO" => Ok(Method::Luhn),
            "MOD7_ALGO" => Ok(Method::Mod7),
            "RANDOM" => Ok(Method::Random),
            "RANDOM_LUHN" => Ok(Method::RandomLuhn),
            "RANDOM_MOD7" => Ok(Method::RandomMod7),
            _ => Err(UnknownMethod(text.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_spelling_parses() {
        for (text, method) in [
            ("DEFAULT", Method::AutoIncrement),
            ("AUTO_INC", Method::AutoIncrement),
            ("LUHN_ALGO", Method::Luhn),
            ("LUHNALGO", Method::Luhn),
            ("MOD7_ALGO", Method::Mod7),
            ("RANDOM", Method::Random),
            ("RANDOM_LUHN", Method::RandomLuhn),
            ("random_mod7", Method::RandomMod7),
        ] {
            assert_eq!(text.parse::<Method>(), Ok(method), "{text}");
        }
        assert!("MOD10".parse::<Method>().is_err());
    }

    #[test]
    fn canonical_spelling_round_trips() {
        for method in Method::ALL {
            assert_eq!(method.as_str().parse::<Method>(), Ok(method));
        }
    }
}
