//! The single-record commands on the real binary: the seeds' request bodies,
//! the printed JSON, the error codes and the exit codes.

use std::collections::HashSet;

use crate::common::{Backend, Workspace, numbers, seed};
use cardbatch::numbers::{CheckDigit, Method, NumberFormat};
use serde_json::json;

fn series_create_takes_the_seeds_body_and_prints_the_entity(backend: Backend) {
    let ws = backend.workspace();
    let created = ws.ok_json(&["series", "create", "--json", &seed("series_create.json")]);
    assert_eq!(created, json!({"entity": 1, "warnings": []}));
    let listed = ws.ok_json(&["series", "list"]);
    assert_eq!(listed[0]["code"], "TestCardSeries123");
    assert_eq!(listed[0]["cardGenerationConfiguration"]["method"], "RANDOM_MOD7");
    assert_eq!(listed[0]["nextCounter"], 1);
}

fn series_create_reads_stdin(backend: Backend) {
    let ws = backend.workspace();
    let body = std::fs::read(seed("series_create.json")).unwrap();
    let output = ws
        .cmd()
        .args(["series", "create", "--json", "-"])
        .write_stdin(body)
        .output()
        .unwrap();
    assert!(output.status.success());
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&output.stdout).unwrap()["entity"],
        1
    );
}

fn series_rules_give_their_codes(backend: Backend) {
    let ws = backend.workspace();
    ws.series(&["--code", "A1", "--type", "DIGITAL", "--prefix", "AB", "--length", "12"]);
    let code = |args: &[&str]| {
        let mut full = vec!["series", "create"];
        full.extend_from_slice(args);
        ws.api_error(&full)
    };
    assert_eq!(code(&["--type", "DIGITAL"]), 3001);
    assert_eq!(code(&["--code", "A1", "--type", "DIGITAL"]), 3002);
    assert_eq!(code(&["--code", "B1"]), 3003);
    assert_eq!(code(&["--code", "B1", "--type", "PLASTIC"]), 400);
    assert_eq!(
        code(&[
            "--code", "B1", "--type", "DIGITAL", "--prefix", "X", "--suffix", "Y", "--length", "3"
        ]),
        3028
    );
    assert_eq!(
        code(&[
            "--code", "B1", "--type", "DIGITAL", "--prefix", "ABCDE", "--length", "5"
        ]),
        3005
    );
    assert_eq!(
        code(&["--code", "B1", "--type", "DIGITAL", "--prefix", "AB", "--length", "12"]),
        3006
    );
    assert_eq!(
        code(&["--code", "B1", "--type", "DIGITAL", "--generation-enabled", "true"]),
        3007
    );
    assert_eq!(
        code(&["--code", "B1", "--type", "DIGITAL", "--expiry-days", "-1"]),
        3019
    );
    assert_eq!(
        code(&["--code", "B1", "--type", "DIGITAL", "--prefix", "A_B", "--length", "12"]),
        3022
    );
    assert_eq!(
        code(&["--code", "B1", "--type", "DIGITAL", "--suffix", "A B", "--length", "12"]),
        3023
    );
    assert_eq!(code(&["--code", "B1", "--type", "DIGITAL", "--length", "151"]), 3024);
    assert_eq!(code(&["--code", "B-1", "--type", "DIGITAL"]), 3032);
    assert_eq!(
        code(&["--code", "B1", "--type", "DIGITAL", "--length", "8", "--offset", "-1"]),
        3047
    );
    assert_eq!(
        code(&[
            "--code", "B1", "--type", "DIGITAL", "--length", "8", "--method", "LUHN", "--offset", "1"
        ]),
        400
    );
    // Nothing above was stored.
    assert_eq!(ws.ok_json(&["series", "list"]).as_array().unwrap().len(), 1);
}

fn generate_prints_the_seeds_shape_with_valid_numbers(backend: Backend) {
    let ws = backend.workspace();
    ws.ok_json(&["series", "create", "--json", &seed("series_create.json")]);
    let response = ws.ok_json(&[
        "cards",
        "generate",
        "--series-id",
        "1",
        "--count",
        "5",
        "--status-label",
        "NOT_ISSUED",
    ]);
    assert_eq!(response["warnings"], json!([]));
    assert_eq!(response["errors"], json!([]));
    let generated = numbers(&response);
    assert_eq!(generated.len(), 5);
    let format = NumberFormat::new("M2", "C0", 10, Method::RandomMod7).unwrap();
    for number in &generated {
        assert_eq!(format.check(number.as_bytes()), Ok(()), "{number}");
    }
    assert_eq!(generated.iter().collect::<HashSet<_>>().len(), 5);
}

fn generate_counts_from_the_offset_and_stops_with_702(backend: Backend) {
    let ws = backend.workspace();
    // DEFAULT, prefix AB, length 5: three counter digits, offset 990 -> 990..=999 fit.
    ws.series(&[
        "--code", "S", "--type", "PHYSICAL", "--prefix", "AB", "--length", "5", "--offset", "990",
    ]);
    let first = numbers(&ws.ok_json(&["cards", "generate", "--series-code", "S", "--count", "4"]));
    assert_eq!(first, ["AB990", "AB991", "AB992", "AB993"]);
    assert_eq!(
        ws.api_error(&["cards", "generate", "--series-code", "S", "--count", "7"]),
        702
    );
    let stderr = String::from_utf8(
        ws.run(&["cards", "generate", "--series-code", "S", "--count", "7"])
            .stderr,
    )
    .unwrap();
    assert!(
        stderr.contains("lengthen the card number or create a new series"),
        "{stderr}"
    );
    let rest = numbers(&ws.ok_json(&["cards", "generate", "--series-code", "S", "--count", "6"]));
    assert_eq!(rest.last().unwrap(), "AB999");
    assert_eq!(
        ws.api_error(&["cards", "generate", "--series-code", "S", "--count", "1"]),
        702
    );
}

fn generate_errors(backend: Backend) {
    let ws = backend.workspace();
    ws.series(&[
        "--code",
        "S",
        "--type",
        "DIGITAL",
        "--length",
        "10",
        "--method",
        "LUHN_ALGO",
    ]);
    ws.series(&[
        "--code",
        "OFF",
        "--type",
        "DIGITAL",
        "--length",
        "11",
        "--generation-enabled",
        "false",
    ]);
    ws.series(&[
        "--code", "SLEEP", "--type", "DIGITAL", "--length", "12", "--active", "false",
    ]);
    let generate = |extra: &[&str]| {
        let mut args = vec!["cards", "generate"];
        args.extend_from_slice(extra);
        ws.api_error(&args)
    };
    assert_eq!(generate(&["--series-code", "S"]), 3025);
    assert_eq!(generate(&["--series-code", "S", "--count", "0"]), 3025);
    assert_eq!(generate(&["--series-code", "S", "--count", "-5"]), 3025);
    assert_eq!(generate(&["--series-code", "S", "--count", "ten"]), 3025);
    assert_eq!(generate(&["--series-code", "S", "--count", "100001"]), 3026);
    assert_eq!(generate(&["--series-code", "NOPE", "--count", "1"]), 3000);
    assert_eq!(generate(&["--series-id", "99", "--count", "1"]), 3000);
    assert_eq!(
        generate(&["--series-code", "S", "--count", "1", "--status-label", "SHINY"]),
        3017
    );
    assert_eq!(generate(&["--series-code", "SLEEP", "--count", "1"]), 3008);
    assert_eq!(generate(&["--series-code", "OFF", "--count", "1"]), 703);
}

fn generate_accepts_org_status_labels_and_writes_csv(backend: Backend) {
    let ws = backend.workspace();
    ws.series(&[
        "--code",
        "S",
        "--type",
        "DIGITAL",
        "--length",
        "10",
        "--method",
        "LUHN_ALGO",
    ]);
    ws.ok_json(&["org", "set", "CARD_STATUS_LABELS", "IN_STOCK:NOT_ISSUED"]);
    let out = ws.path("numbers.csv");
    let response = ws.ok_json(&[
        "cards",
        "generate",
        "--series-code",
        "S",
        "--count",
        "3",
        "--status-label",
        "IN_STOCK",
        "--output",
        out.to_str().unwrap(),
    ]);
    assert_eq!(response["count"], 3);
    let csv = std::fs::read_to_string(&out).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines,
        [
            "card_number,series_code,status_label",
            "0000000018,S,IN_STOCK",
            "0000000026,S,IN_STOCK",
            "0000000034,S,IN_STOCK"
        ]
    );
}

fn generate_skips_numbers_already_added_by_hand(backend: Backend) {
    let ws = backend.workspace();
    ws.series(&["--code", "S", "--type", "DIGITAL", "--prefix", "P", "--length", "6"]);
    let card = ws.write("card.json", r#"{"seriesCode":"S","cardNumber":"P00002"}"#);
    ws.ok_json(&["cards", "add", "--json", card.to_str().unwrap()]);
    let response = ws.ok_json(&["cards", "generate", "--series-code", "S", "--count", "3"]);
    assert_eq!(numbers(&response), ["P00001", "P00003", "P00004"]);
    assert!(
        response["warnings"][0]
            .as_str()
            .unwrap()
            .contains("1 counter value(s) skipped")
    );
}

fn two_processes_generating_at_once_never_repeat_a_number(backend: Backend) {
    let ws = backend.workspace();
    ws.series(&[
        "--code",
        "S",
        "--type",
        "DIGITAL",
        "--length",
        "12",
        "--method",
        "RANDOM_LUHN",
    ]);
    let children: Vec<_> = (0..3)
        .map(|_| ws.spawn(&["cards", "generate", "--series-code", "S", "--count", "30000"]))
        .collect();
    let mut all = HashSet::new();
    for child in children {
        let output = child.wait_with_output().unwrap();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        let response: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        for number in numbers(&response) {
            assert!(all.insert(number.clone()), "{number} generated twice");
        }
    }
    assert_eq!(all.len(), 90_000);
    assert_eq!(ws.ok_json(&["series", "list"])[0]["nextCounter"], 90_001);
}

fn cards_add_takes_the_seeds_body(backend: Backend) {
    let ws = backend.workspace();
    ws.series(&[
        "--code", "ghost", "--type", "PHYSICAL", "--prefix", "ghost", "--length", "21",
    ]);
    assert_eq!(
        ws.ok_json(&["cards", "add", "--json", &seed("card_add.json")]),
        json!({"entity": 1, "warnings": []})
    );
    assert_eq!(ws.api_error(&["cards", "add", "--json", &seed("card_add.json")]), 3009);
}

fn cards_add_errors(backend: Backend) {
    let ws = backend.workspace();
    ws.series(&[
        "--code",
        "S",
        "--type",
        "DIGITAL",
        "--prefix",
        "P",
        "--length",
        "8",
        "--method",
        "LUHN_ALGO",
    ]);
    ws.series(&[
        "--code", "SLEEP", "--type", "DIGITAL", "--prefix", "Q", "--length", "8", "--active", "false",
    ]);
    let add = |body: &str| {
        let path = ws.write("body.json", body);
        ws.api_error(&["cards", "add", "--json", path.to_str().unwrap()])
    };
    let good = |n: u64| {
        let format = NumberFormat::new("P", "", 8, Method::Luhn).unwrap();
        let mut out = vec![0u8; 8];
        format.render(n, None, &mut out);
        String::from_utf8(out).unwrap()
    };
    assert_eq!(add(r#"{"seriesId": 42, "cardNumber": "P1234567"}"#), 3004);
    assert_eq!(add(r#"{"seriesCode": "NOPE", "cardNumber": "P1234567"}"#), 3004);
    assert_eq!(add(r#"{"cardNumber": "P1234567"}"#), 400);
    assert_eq!(add(r#"{"seriesCode": "S", "cardNumber": "P123"}"#), 400);
    assert_eq!(
        add(r#"{"seriesCode": "S", "cardNumber": "P1234560"}"#)
            .max(add(r#"{"seriesCode": "S", "cardNumber": "P1234561"}"#)),
        400
    );
    assert_eq!(
        add(&format!(
            r#"{{"seriesCode": "S", "cardNumber": "{}", "statusLabel": "SHINY"}}"#,
            good(5)
        )),
        3017
    );
    assert_eq!(add(r#"{"seriesCode": "SLEEP", "cardNumber": "Q0000001"}"#), 3008);
    assert_eq!(add(r#"{"seriesCode": "S", "cardNumber": 5}"#), 400);
    assert_eq!(add("{not json"), 400);
    let first = ws.write(
        "first.json",
        format!(
            r#"{{"seriesCode": "S", "cardNumber": "{}", "cardExternalId": "EXT1"}}"#,
            good(1)
        ),
    );
    ws.ok_json(&["cards", "add", "--json", first.to_str().unwrap()]);
    assert_eq!(
        add(&format!(
            r#"{{"seriesCode": "S", "cardNumber": "{}", "cardExternalId": "EXT1"}}"#,
            good(2)
        )),
        3045
    );
    // The message names the rule that was broken.
    let path = ws.write("bad.json", r#"{"seriesCode": "S", "cardNumber": "X1234567"}"#);
    let stderr = String::from_utf8(ws.run(&["cards", "add", "--json", path.to_str().unwrap()]).stderr).unwrap();
    assert!(stderr.contains("PREFIX_SUFFIX_MISMATCH"), "{stderr}");
}

fn set_external_id_prints_the_seeds_response(backend: Backend) {
    let ws = backend.workspace();
    ws.series(&[
        "--code", "Test09", "--type", "DIGITAL", "--prefix", "Test09", "--suffix", "end", "--length", "21",
    ]);
    ws.ok_json(&["org", "set", "CARD_STATUS_LABELS", "LIVE:ACTIVE"]);
    let card = ws.write(
        "card.json",
        r#"{"seriesCode":"Test09","cardNumber":"Test09000000000105end","statusLabel":"LIVE","customerId":566135941}"#,
    );
    ws.ok_json(&["cards", "add", "--json", card.to_str().unwrap()]);
    let body: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(seed("card_update.json")).unwrap()).unwrap();
    let response = ws.ok_json(&[
        "cards",
        "set-external-id",
        "--card-number",
        body["cardNumber"].as_str().unwrap(),
        "--external-id",
        body["cardExternalId"].as_str().unwrap(),
    ]);
    assert_eq!(
        response,
        json!({
            "cardId": 1, "customerId": 566135941, "cardExternalId": "CardExternal1",
            "cardNumber": "Test09000000000105end", "orgId": 1, "entityId": null,
            "transactionNotAllowed": false, "activeAndDigital": true, "warnings": []
        })
    );
    let keys: Vec<&String> = response.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "cardId",
            "customerId",
            "cardExternalId",
            "cardNumber",
            "orgId",
            "entityId",
            "transactionNotAllowed",
            "activeAndDigital",
            "warnings"
        ]
    );
    assert_eq!(
        ws.api_error(&[
            "cards",
            "set-external-id",
            "--card-number",
            "Nope0900000000105end",
            "--external-id",
            "X"
        ]),
        3010
    );
    let other = ws.write(
        "other.json",
        r#"{"seriesCode":"Test09","cardNumber":"Test09000000000106end"}"#,
    );
    ws.ok_json(&["cards", "add", "--json", other.to_str().unwrap()]);
    assert_eq!(
        ws.api_error(&[
            "cards",
            "set-external-id",
            "--card-number",
            "Test09000000000106end",
            "--external-id",
            "CardExternal1"
        ]),
        3045
    );
    assert_eq!(
        ws.api_error(&[
            "cards",
            "set-external-id",
            "--card-number",
            "Test09000000000106end",
            "--external-id",
            "bad id"
        ]),
        400
    );
}

fn external_id_generation_follows_the_org_configuration(backend: Backend) {
    let ws = backend.workspace();
    assert_eq!(ws.api_error(&["external-id", "generate"]), 703);
    ws.ok_json(&["org", "set", "CONF_CARD_NUMBER_GENERATION_ENABLED", "1"]);
    assert_eq!(
        ws.api_error(&["external-id", "generate"]),
        3005,
        "no CONF_CARD_NUMBER_LENGTH"
    );
    for (key, value) in [
        ("CONF_CARD_NUMBER_LENGTH", "14"),
        ("CONF_CARD_NUMBER_PREFIX", "77"),
        ("CONF_CARD_CHECKSUM_DIGIT_ALGO", "RANDOM_LUHN"),
        ("CONF_VALUES_TO_INCLUDE_FOR_CHECKSUM_DIGIT", "PREFIX"),
        ("SOURCE_ACCOUNTS_EXTERNALID_ENABLED", "12,34"),
    ] {
        ws.ok_json(&["org", "set", key, value]);
    }
    let mut seen = HashSet::new();
    for _ in 0..20 {
        let id = ws.ok_json(&["external-id", "generate", "--source-account", "34"])["entity"]
            .as_str()
            .unwrap()
            .to_string();
        assert_eq!(id.len(), 14);
        assert!(id.starts_with("77"));
        // The check digit covers the prefix's digits too.
        assert_eq!(
            CheckDigit::Luhn.compute(&id.as_bytes()[..13]),
            id.as_bytes()[13] - b'0',
            "{id}"
        );
        assert!(seen.insert(id));
    }
    assert_eq!(
        ws.api_error(&["external-id", "generate", "--source-account", "99"]),
        703
    );
    ws.ok_json(&["org", "set", "CONF_CARD_NUMBER_GENERATION_ENABLED", "false"]);
    assert_eq!(ws.api_error(&["external-id", "generate"]), 703);
}

fn external_id_counter_starts_at_the_offset_and_skips_taken_ids(backend: Backend) {
    let ws = backend.workspace();
    for (key, value) in [
        ("CONF_CARD_NUMBER_GENERATION_ENABLED", "true"),
        ("CONF_CARD_NUMBER_LENGTH", "8"),
        ("CONF_CARD_NUMBER_PREFIX", "EX"),
        ("CONF_CARD_NUMBER_SUFFIX", "Z"),
        ("CONF_CARD_NUMBER_OFFSET", "41"),
    ] {
        ws.ok_json(&["org", "set", key, value]);
    }
    ws.series(&["--code", "S", "--type", "DIGITAL", "--length", "6"]);
    let card = ws.write(
        "card.json",
        r#"{"seriesCode":"S","cardNumber":"000009","cardExternalId":"EX00042Z"}"#,
    );
    ws.ok_json(&["cards", "add", "--json", card.to_str().unwrap()]);
    let ids: Vec<String> = (0..2)
        .map(|_| {
            ws.ok_json(&["external-id", "generate"])["entity"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(ids, ["EX00041Z", "EX00043Z"]);
}

fn org_configuration_is_validated(backend: Backend) {
    let ws = backend.workspace();
    // `org show` only reads: the database is made first.
    assert!(ws.run(&["db", "init"]).status.success());
    let shown = ws.ok_json(&["org", "show"]);
    assert_eq!(shown["CONF_CARD_NUMBER_OFFSET"], 1);
    assert_eq!(shown["CONF_CARD_NUMBER_GENERATION_ENABLED"], false);
    let set = ws.ok_json(&["org", "set", "CONF_CARD_CHECKSUM_DIGIT_ALGO", "MOD7_ALGO"]);
    assert_eq!(set["CONF_CARD_CHECKSUM_DIGIT_ALGO"], "MOD7_ALGO");
    for (key, value) in [
        ("CONF_UNKNOWN", "1"),
        ("CONF_CARD_NUMBER_LENGTH", "51"),
        ("CONF_CARD_NUMBER_GENERATION_ENABLED", "maybe"),
        ("CONF_CARD_CHECKSUM_DIGIT_ALGO", "CRC"),
        ("CONF_VALUES_TO_INCLUDE_FOR_CHECKSUM_DIGIT", "ALL"),
    ] {
        let output = ws.run(&["org", "set", key, value]);
        assert_eq!(output.status.code(), Some(2), "{key}={value}");
        assert!(String::from_utf8_lossy(&output.stderr).contains(key) || key == "CONF_UNKNOWN");
    }
    // Orgs are separate.
    ws.ok_json(&["--org", "2", "org", "set", "CONF_CARD_NUMBER_LENGTH", "9"]);
    assert_eq!(ws.ok_json(&["org", "show"])["CONF_CARD_NUMBER_LENGTH"], json!(null));
    assert_eq!(ws.ok_json(&["--org", "2", "org", "show"])["CONF_CARD_NUMBER_LENGTH"], 9);
}

fn series_codes_are_per_org(backend: Backend) {
    let ws = backend.workspace();
    ws.series(&["--code", "S", "--type", "DIGITAL", "--length", "10"]);
    assert_eq!(
        ws.ok_json(&[
            "--org", "7", "series", "create", "--code", "S", "--type", "DIGITAL", "--length", "10"
        ])["entity"],
        2
    );
    assert_eq!(
        ws.api_error(&["--org", "7", "cards", "generate", "--series-id", "1", "--count", "1"]),
        3000
    );
}

#[test]
fn database_passwords_are_never_printed() {
    let ws = Workspace::sqlite();
    let output = ws
        .cmd()
        .env("DATABASE_URL", "postgres://cards:hunter2@127.0.0.1:1/cards")
        .args(["series", "list"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(!all.contains("hunter2"), "{all}");
    assert!(all.contains("cards:***@127.0.0.1"), "{all}");
    // The cause is named (not a pool timeout).
    assert!(all.contains("refused"), "{all}");
}

crate::on_every_backend!(
    series_create_takes_the_seeds_body_and_prints_the_entity,
    series_create_reads_stdin,
    series_rules_give_their_codes,
    generate_prints_the_seeds_shape_with_valid_numbers,
    generate_counts_from_the_offset_and_stops_with_702,
    generate_errors,
    generate_accepts_org_status_labels_and_writes_csv,
    generate_skips_numbers_already_added_by_hand,
    two_processes_generating_at_once_never_repeat_a_number,
    cards_add_takes_the_seeds_body,
    cards_add_errors,
    set_external_id_prints_the_seeds_response,
    external_id_generation_follows_the_org_configuration,
    external_id_counter_starts_at_the_offset_and_skips_taken_ids,
    org_configuration_is_validated,
    series_codes_are_per_org,
);
