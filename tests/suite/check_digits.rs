//! Which digits a series' check digit covers (`valuesToIncludeForChecksumDigit`):
//! `NONE`, the platform's default, covers the digits after the prefix;
//! `PREFIX` covers the prefix's digits too, as ISO/IEC 7812 card numbers
//! need. Checked against check digits computed here, independently of the
//! crate, on real card numbers from elsewhere and on generated ones.

use crate::common::{Backend, Workspace, numbers};

/// ISO/IEC 7812-1 (Luhn) over the whole number: valid when the sum is a multiple of 10.
fn whole_number_luhn_ok(number: &str) -> bool {
    let sum: u32 = number
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0');
            if i % 2 == 1 {
                let doubled = d * 2;
                if doubled > 9 { doubled - 9 } else { doubled }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// A standard card number: `prefix` + `body`, completed with its whole-number Luhn digit.
fn standard_card(prefix: &str, body: u64) -> String {
    let partial = format!("{prefix}{body:011}");
    (0..10)
        .map(|d| format!("{partial}{d}"))
        .find(|n| whole_number_luhn_ok(n))
        .unwrap()
}

fn series(ws: &Workspace, code: &str, prefix: &str, method: &str, values: Option<&str>) {
    let mut args = vec![
        "--code", code, "--type", "PHYSICAL", "--prefix", prefix, "--length", "16", "--method", method,
    ];
    if let Some(values) = values {
        args.extend(["--values-to-include-for-checksum-digit", values]);
    }
    ws.series(&args);
}

fn whole_number_check_digits_with_prefix(backend: Backend) {
    let ws = backend.workspace();
    series(&ws, "ISO", "8001", "LUHN_ALGO", Some("PREFIX"));
    let listed = ws.ok_json(&["series", "list"]);
    assert_eq!(
        listed[0]["cardGenerationConfiguration"]["valuesToIncludeForChecksumDigit"],
        "PREFIX"
    );
    // The same numbers in a series of the platform's default, in a database of its own
    // (two series cannot share a prefix, suffix and length).
    let platform = backend.workspace();
    series(&platform, "PLATFORM", "8001", "LUHN_ALGO", None);
    let listed = platform.ok_json(&["series", "list"]);
    assert_eq!(
        listed[0]["cardGenerationConfiguration"]["valuesToIncludeForChecksumDigit"],
        "NONE"
    );

    // 1000 standard card numbers from another system.
    let cards: Vec<String> = (0..1000).map(|i| standard_card("8001", 7_000_000 + i * 37)).collect();
    let csv = |code: &str| {
        let mut text = String::from("card_number,series_code\n");
        for card in &cards {
            text.push_str(&format!("{card},{code}\n"));
        }
        text
    };
    ws.write("iso.csv", csv("ISO"));
    let (code, summary) = ws.import(&["cards", "iso.csv"]);
    assert_eq!((code, summary["inserted"].as_u64()), (0, Some(1000)), "{summary}");
    // The platform's default covers the generated part only: they all fail there.
    platform.write("platform.csv", csv("PLATFORM"));
    // (A thousand rejects: the wrong-file guard would stop it at the last.)
    let (code, summary) = platform.import(&["cards", "platform.csv", "--max-rejects", "none"]);
    assert_eq!(summary["rejected_by_reason"]["CHECKSUM_INVALID"], 1000, "{summary}");
    assert_eq!(code, 4);

    // Generated numbers of a PREFIX series pass the whole-number check; of a NONE series, they need not.
    series(&ws, "ISOGEN", "4000", "RANDOM_LUHN", Some("PREFIX"));
    series(&ws, "RANDOMGEN", "4001", "RANDOM_LUHN", None);
    let generated = numbers(&ws.ok_json(&["cards", "generate", "--series-code", "ISOGEN", "--count", "2000"]));
    assert_eq!(generated.len(), 2000);
    assert!(
        generated.iter().all(|n| whole_number_luhn_ok(n)),
        "every ISOGEN number passes ISO Luhn"
    );
    let plain = numbers(&ws.ok_json(&["cards", "generate", "--series-code", "RANDOMGEN", "--count", "2000"]));
    let passing = plain.iter().filter(|n| whole_number_luhn_ok(n)).count();
    assert!(
        passing < 400,
        "{passing} of 2000 NONE numbers pass by chance (about 1 in 10 expected)"
    );
}

/// Mod 7 over the digits given, as the README's worked example computes it
/// (the value of the digits as one decimal number, mod 7).
fn mod7(digits: &str) -> u32 {
    digits.bytes().fold(0, |rest, b| (rest * 10 + u32::from(b - b'0')) % 7)
}

fn mod7_covers_the_prefix_when_asked(backend: Backend) {
    let ws = backend.workspace();
    ws.series(&[
        "--code",
        "M7",
        "--type",
        "DIGITAL",
        "--prefix",
        "77",
        "--length",
        "12",
        "--method",
        "MOD7_ALGO",
        "--values-to-include-for-checksum-digit",
        "PREFIX",
    ]);
    let generated = numbers(&ws.ok_json(&["cards", "generate", "--series-code", "M7", "--count", "50"]));
    for number in &generated {
        let (payload, check) = number.split_at(number.len() - 1);
        assert_eq!(
            mod7(payload).to_string(),
            check,
            "{number}: mod 7 over prefix and counter"
        );
    }
}

crate::on_every_backend!(whole_number_check_digits_with_prefix, mod7_covers_the_prefix_when_asked);
