//! Properties of number generation, checked over many random series shapes:
//! every number fits its series, none repeats, and the counter runs from the
//! offset to exactly the last value that fits.

use std::collections::HashSet;

use cardbatch::domain::SeriesRequest;
use cardbatch::numbers::{Method, NumberFormat, NumberGenerator, PermutationKey};
use cardbatch::store::{DatabaseUrl, GenerateCards, OpenOptions, SeriesRef, SqliteStore, Store, StoreError};
use proptest::prelude::*;

fn method() -> impl Strategy<Value = Method> {
    prop::sample::select(Method::ALL.to_vec())
}

/// A format with room for at least `min_counter_digits` counter digits.
fn format(min_counter_digits: usize, max_length: usize) -> impl Strategy<Value = NumberFormat> {
    ("[A-Z0-9]{0,6}", "[A-Z0-9]{0,4}", method(), 0usize..=max_length).prop_filter_map(
        "no room for the counter",
        move |(prefix, suffix, method, extra)| {
            let check = usize::from(method.check_digit().is_some());
            let length = prefix.len() + suffix.len() + check + min_counter_digits + extra;
            (length <= 150)
                .then(|| NumberFormat::new(&prefix, &suffix, length, method).ok())
                .flatten()
        },
    )
}

fn key() -> impl Strategy<Value = PermutationKey> {
    any::<[u8; 16]>().prop_map(PermutationKey)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn every_number_fits_its_series(format in format(1, 140), key in key(), start in 0u64..1_000_000, count in 1usize..300) {
        let generator = NumberGenerator::new(format.clone(), key);
        let max = format.max_counter();
        let start = start.min(max);
        let count = count.min((max - start + 1).min(300) as usize);
        for number in generator.render_block(start, count).iter() {
            prop_assert_eq!(number.len(), format.length());
            prop_assert!(number.starts_with(format.prefix()));
            prop_assert!(number.ends_with(format.suffix()));
            let body = &number[format.prefix().len()..number.len() - format.suffix().len()];
            prop_assert!(body.bytes().all(|b| b.is_ascii_digit()));
            if let Some(algorithm) = format.method().check_digit() {
                let (payload, check) = body.split_at(body.len() - 1);
                prop_assert_eq!(algorithm.compute(payload.as_bytes()), check.as_bytes()[0] - b'0');
            }
            prop_assert_eq!(format.check(number.as_bytes()), Ok(()));
        }
    }

    #[test]
    fn no_number_repeats_within_or_across_calls(format in format(4, 20), key in key(), offset in 0u64..100, first_call in 1usize..3000, second_call in 1usize..3000) {
        let generator = NumberGenerator::new(format, key);
        // Two calls over consecutive counter ranges, as the store hands them out.
        let first = generator.render_block(offset, first_call);
        let second = generator.render_block(offset + first_call as u64, second_call);
        let mut seen = HashSet::new();
        for number in first.iter().chain(second.iter()) {
            prop_assert!(seen.insert(number.to_string()), "{} repeats", number);
        }
    }

    #[test]
    fn random_methods_cover_a_small_space_exactly(prefix in "[A-Z]{0,3}", method in prop::sample::select(vec![Method::Random, Method::RandomLuhn, Method::RandomMod7]), key in key()) {
        // Three counter digits: all 1000 counter values give 1000 distinct numbers.
        let length = prefix.len() + 3 + usize::from(method.check_digit().is_some());
        let generator = NumberGenerator::new(NumberFormat::new(&prefix, "", length, method).unwrap(), key);
        let all: HashSet<String> = generator.render_block(0, 1000).iter().map(str::to_string).collect();
        prop_assert_eq!(all.len(), 1000);
    }
}

proptest! {
    // Each case opens a real SQLite file, so fewer cases.
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    #[test]
    fn counter_starts_at_offset_and_exhausts_exactly(method in method(), offset in 0i64..990, chunk in 1usize..400) {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        runtime.block_on(async {
            let dir = tempfile::tempdir().unwrap();
            let url = DatabaseUrl::parse(&format!("sqlite://{}", dir.path().join("p.db").display())).unwrap();
            let options = OpenOptions { lock_timeout: std::time::Duration::from_secs(5), announce_waits: false, create: true, announce_created: false, require_citus: false };
            let store = SqliteStore::open(&url, &options).await.unwrap();
            // Prefix "AB" + three counter digits (+ check digit): values offset..=999 fit.
            let length = 5 + usize::from(method.check_digit().is_some());
            let request: SeriesRequest = serde_json::from_value(serde_json::json!({
                "code": "P", "type": "DIGITAL",
                "cardGenerationConfiguration": {"prefix": "AB", "length": length, "offset": offset, "method": method.as_str()}
            })).unwrap();
            let series_id = store.create_series(1, &request.validate().unwrap()).await.unwrap();
            let series = store.find_series(1, SeriesRef::Id(series_id)).await.unwrap().unwrap();
            let generator = series.generator().unwrap();
            let mut all = Vec::new();
            loop {
                let remaining = 1000 - offset as usize - all.len();
                let count = chunk.min(remaining.max(1));
                let request = GenerateCards { series_id, count, status_label: "NOT_ISSUED".into(), generator: generator.clone() };
                match store.generate_cards(1, &request, &mut |_| Ok(())).await {
                    Ok(generated) => all.extend(generated.numbers),
                    Err(StoreError::CounterExhausted { next, .. }) => {
                        prop_assert_eq!(next, 1000);
                        prop_assert_eq!(remaining, 0);
                        break;
                    }
                    Err(other) => panic!("{other}"),
                }
            }
            prop_assert_eq!(all.len(), 1000 - offset as usize);
            prop_assert_eq!(&all[0], &generator.render_one(offset as u64));
            prop_assert_eq!(all.last().unwrap(), &generator.render_one(999));
            prop_assert_eq!(all.iter().collect::<HashSet<_>>().len(), all.len());
            Ok(())
        })?;
    }
}
