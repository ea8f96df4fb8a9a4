//! `import external-ids` and `import customers` on the real binary.

use crate::common::{Backend, Workspace, assert_accounted};
use serde_json::json;

/// (line, reason, field) of each row of a reject report.
fn report(ws: &Workspace, name: &str) -> Vec<(String, String, String)> {
    let mut reader = csv::Reader::from_path(ws.path(&format!("{name}.rejects.csv"))).unwrap();
    reader
        .records()
        .map(|r| {
            let r = r.unwrap();
            (r[0].to_string(), r[2].to_string(), r[3].to_string())
        })
        .collect()
}

fn add_card(ws: &Workspace, number: &str, external_id: Option<&str>) {
    let body = match external_id {
        Some(id) => format!(r#"{{"seriesCode":"LUHN1","cardNumber":"{number}","cardExternalId":"{id}"}}"#),
        None => format!(r#"{{"seriesCode":"LUHN1","cardNumber":"{number}"}}"#),
    };
    let path = ws.write("card.json", body);
    ws.ok_json(&["cards", "add", "--json", path.to_str().unwrap()]);
}

fn external_ids_are_set_on_existing_cards(backend: Backend) {
    let ws = backend.workspace();
    ws.import_setup();
    add_card(&ws, "6001000000000018", None);
    add_card(&ws, "6001000000000026", Some("CX00000026"));
    add_card(&ws, "6001000000000034", None);
    add_card(&ws, "6001000000000042", Some("CX00000042"));
    ws.write(
        "ids.csv",
        "card_number,external_id\n\
         6001000000000018,CX00000018\n\
         6001000000000026,CX00000099\n\
         6009999999999999,CX00000001\n\
         6001000000000034,CX00000018\n\
         6001000000000018,CX00000077\n\
         6001000000000034,CX00000042\n\
         6001000000000034,CX0000034\n\
         6001000000000034,CX00000034\n",
    );
    let (code, summary) = ws.import(&["external-ids", "ids.csv"]);
    assert_eq!(code, 4);
    assert_accounted(&summary);
    assert_eq!(summary["inserted"], 2);
    assert_eq!(
        report(&ws, "ids.csv"),
        [
            ("3".into(), "EXTERNAL_ID_ALREADY_SET".into(), "external_id".into()),
            ("4".into(), "CARD_NOT_FOUND".into(), "card_number".into()),
            ("5".into(), "DUPLICATE_IN_FILE".into(), "external_id".into()),
            ("6".into(), "DUPLICATE_IN_FILE".into(), "card_number".into()),
            ("7".into(), "DUPLICATE_IN_DATABASE".into(), "external_id".into()),
            ("8".into(), "LENGTH_MISMATCH".into(), "external_id".into()),
        ]
    );
    let updated: Vec<_> = ws
        .events()
        .into_iter()
        .filter(|e| e["kind"] == "card_external_id_set")
        .collect();
    assert_eq!(updated.len(), 2);
    assert_eq!(updated[0]["payload"]["card_number"], "6001000000000018");
    assert_eq!(updated[0]["payload"]["external_id"], "CX00000018");
    assert_eq!(updated[0]["payload"]["previous_external_id"], json!(null));

    // --overwrite replaces an external ID a card already has.
    ws.write("replace.csv", "card_number,external_id\n6001000000000026,CX00000099\n");
    let (_, summary) = ws.import(&["external-ids", "replace.csv", "--overwrite"]);
    assert_eq!(summary["inserted"], 1);
    let replaced = ws.events().into_iter().last().unwrap();
    assert_eq!(replaced["payload"]["previous_external_id"], "CX00000026");
    let card = ws.ok_json(&[
        "cards",
        "set-external-id",
        "--card-number",
        "6001000000000026",
        "--external-id",
        "CX00000100",
    ]);
    assert_eq!(card["cardExternalId"], "CX00000100");
}

fn customers_get_generated_external_ids_and_are_never_overwritten(backend: Backend) {
    let ws = backend.workspace();
    for (key, value) in [
        ("CONF_CARD_NUMBER_GENERATION_ENABLED", "true"),
        ("CONF_CARD_NUMBER_LENGTH", "10"),
        ("CONF_CARD_NUMBER_PREFIX", "CU"),
        ("CONF_CARD_CHECKSUM_DIGIT_ALGO", "RANDOM_MOD7"),
    ] {
        ws.ok_json(&["org", "set", key, value]);
    }
    let valid = ws.ok_json(&["external-id", "generate"])["entity"]
        .as_str()
        .unwrap()
        .to_string();
    ws.write(
        "customers.jsonl",
        format!(
            "{{\"customerId\": 101}}\n{{\"customer_id\": \"102\", \"external_id\": \"{valid}\"}}\n{{\"customerId\": 103}}\n\
             {{\"customerId\": 101}}\n{{\"customerId\": 104, \"externalId\": \"CU12345678\"}}\n{{\"customerId\": -5}}\n"
        ),
    );
    let (code, summary) = ws.import(&["customers", "customers.jsonl"]);
    assert_eq!(code, 4);
    assert_accounted(&summary);
    assert_eq!(summary["inserted"], 3);
    let reasons: Vec<String> = report(&ws, "customers.jsonl").into_iter().map(|r| r.1).collect();
    assert_eq!(reasons, ["DUPLICATE_IN_FILE", "CHECKSUM_INVALID", "INVALID_CHARACTERS"]);
    let registered: Vec<_> = ws
        .events()
        .into_iter()
        .filter(|e| e["kind"] == "customer_registered")
        .collect();
    assert_eq!(registered.len(), 3);
    let generated: Vec<&str> = registered
        .iter()
        .filter(|e| e["payload"]["external_id_generated"] == true)
        .map(|e| e["payload"]["external_id"].as_str().unwrap())
        .collect();
    assert_eq!(generated.len(), 2);
    for id in &generated {
        assert_eq!(id.len(), 10);
        assert!(id.starts_with("CU"));
        let body = &id[2..9];
        assert_eq!(
            body.parse::<u64>().unwrap() % 7,
            u64::from(id.as_bytes()[9] - b'0'),
            "{id}"
        );
        assert_ne!(*id, valid);
    }
    // A registered customer keeps its external ID.
    ws.write("again.csv", "customer_id,external_id\n101,CU00000000\n");
    let (_, summary) = ws.import(&["customers", "again.csv"]);
    assert_eq!(summary["rejected_by_reason"], json!({"DUPLICATE_IN_DATABASE": 1}));
}

fn customers_without_generation_need_an_external_id(backend: Backend) {
    let ws = backend.workspace();
    ws.write("customers.csv", "customer_id,external_id\n1,\n2,OWN-ID-2\n");
    let (_, summary) = ws.import(&["customers", "customers.csv"]);
    assert_eq!(summary["inserted"], 1);
    assert_eq!(summary["rejected_by_reason"], json!({"MISSING_FIELD": 1}));
}

crate::on_every_backend!(
    external_ids_are_set_on_existing_cards,
    customers_get_generated_external_ids_and_are_never_overwritten,
    customers_without_generation_need_an_external_id,
);
