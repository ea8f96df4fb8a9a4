//! Each import primitive of each store, on a real database: what the
//! store-neutral import session relies on (`store/backend.rs`).

use std::collections::HashMap;

use cardbatch::batch::{CardRow, ExternalIdRow, ImportKind, RejectRow};
use cardbatch::domain::RejectReason;
use cardbatch::store::backend::{CardInsert, Holder, ImportBackend, NewCustomer, PendingEvent, RunContext};
use cardbatch::store::events::EventPayload;
use cardbatch::store::{self, BatchOutcome, DatabaseUrl, ImportStart, OpenOptions, RunStatus, Store};
use compact_str::CompactString;

use crate::common::{Backend, Workspace};

fn start(dry_run: bool) -> ImportStart {
    ImportStart {
        kind: ImportKind::Cards,
        input_name: "primitives.csv".into(),
        input_hash: "0123abcd".into(),
        input_format: cardbatch::batch::Format::Csv,
        input_header: Some("card_number,series_code".into()),
        reading_plan: String::new(),
        input_details: Default::default(),
        basis: Default::default(),
        adopted_records: 0,
        dry_run,
        group_commits: false,
        overwrite_external_ids: false,
        connections: 1,
        external_id_generation: None,
        series_codes: Default::default(),
    }
}

/// A batch's outcome of `inserted` and `rejected` records.
fn counts(inserted: u64, rejected: u64) -> BatchOutcome {
    BatchOutcome {
        inserted,
        rejected,
        ..BatchOutcome::default()
    }
}

fn card(record: u64, number: &str, external_id: Option<&str>) -> CardRow {
    CardRow {
        record,
        series_id: 1,
        card_number: CompactString::from(number),
        external_id: external_id.map(CompactString::from),
        status_label: CompactString::from("NOT_ISSUED"),
        customer_id: None,
        extras: None,
    }
}

/// The workspace's store (org and series set up through the binary) and a runtime to drive it.
fn open(ws: &Workspace) -> (tokio::runtime::Runtime, Box<dyn Store>) {
    ws.import_setup();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let options = OpenOptions {
        lock_timeout: std::time::Duration::from_secs(5),
        announce_waits: false,
        create: true,
        announce_created: false,
        require_citus: false,
    };
    let store = runtime
        .block_on(store::open(&DatabaseUrl::parse(&ws.url).unwrap(), &options))
        .unwrap();
    (runtime, store)
}

fn context(backend: &dyn ImportBackend) -> RunContext {
    RunContext {
        org_id: 1,
        run_id: backend.run().run_id,
        created_at: store::now(),
    }
}

fn transactions_savepoints_and_the_run(backend_kind: Backend) {
    let ws = backend_kind.workspace();
    let (runtime, store) = open(&ws);
    runtime.block_on(async {
        let mut backend = store.import_backend(1, &start(false)).await.unwrap();
        assert_eq!(backend.run().status, RunStatus::Running);
        assert_eq!(backend.run().records_committed, 0);
        let run = context(backend.as_ref());
        // A savepoint undoes what follows it, and the transaction commits the rest.
        backend.begin().await.unwrap();
        backend.checkpoint(&run, 5, &counts(4, 1)).await.unwrap();
        backend.savepoint("later").await.unwrap();
        backend.checkpoint(&run, 9, &counts(1, 0)).await.unwrap();
        backend.rollback_to("later").await.unwrap();
        backend.release("later").await.unwrap();
        backend.commit().await.unwrap();
        let stored = store.find_run(1, run.run_id).await.unwrap().unwrap();
        assert_eq!((stored.records_committed, stored.inserted, stored.rejected), (5, 4, 1));
        // A rolled-back transaction leaves nothing.
        backend.begin().await.unwrap();
        backend.checkpoint(&run, 7, &counts(2, 0)).await.unwrap();
        backend.rollback().await.unwrap();
        assert_eq!(
            store.find_run(1, run.run_id).await.unwrap().unwrap().records_committed,
            5
        );
        // Where records start: the offset from each recorded record on.
        backend.begin().await.unwrap();
        backend.insert_line_offsets(&run, &[(1, 1), (4, 3)]).await.unwrap();
        backend.finish(1, run.run_id, RunStatus::Interrupted, 2).await.unwrap();
        backend.commit().await.unwrap();
        let lines = backend.lines_of(&run, &[1, 3, 4, 9]).await.unwrap();
        assert_eq!(lines, HashMap::from([(1, 2), (3, 4), (4, 7), (9, 12)]));
        backend.close().await.unwrap();
        // The run as `runs show` reads it.
        let info = store.find_run(1, run.run_id).await.unwrap().unwrap();
        assert_eq!(
            (info.kind.as_str(), info.input.as_deref(), info.input_format.as_deref()),
            ("import_cards", Some("primitives.csv"), Some("csv"))
        );
        assert_eq!(info.input_header.as_deref(), Some("card_number,series_code"));
        assert_eq!((info.status, info.already_committed), (RunStatus::Interrupted, 2));
        assert!(info.finished_at.is_some() && info.started_at.ends_with('Z'), "{info:?}");
        assert_eq!(store.list_runs(1).await.unwrap(), [info]);
        // Opened again, the backend finds the same run where it was left.
        let backend = store.import_backend(1, &start(false)).await.unwrap();
        assert_eq!(backend.run().run_id, run.run_id);
        assert_eq!(backend.run().status, RunStatus::Interrupted);
        assert_eq!(backend.run().records_committed, 5);
        backend.close().await.unwrap();
    });
}

fn cards_keys_and_their_holders(backend_kind: Backend) {
    let ws = backend_kind.workspace();
    let (runtime, store) = open(&ws);
    runtime.block_on(async {
        let mut backend = store.import_backend(1, &start(false)).await.unwrap();
        let run = context(backend.as_ref());
        backend.begin().await.unwrap();
        let rows = [
            card(1, "6001000000000018", Some("CX00000001")),
            card(2, "6001000000000026", None),
        ];
        let inserted = backend
            .insert_cards(&run, &rows.iter().collect::<Vec<_>>())
            .await
            .unwrap();
        let CardInsert {
            ids: Some((first, last)),
            skipped,
        } = inserted
        else {
            panic!("{inserted:?}");
        };
        assert!(skipped.is_empty());
        assert!(last > first, "({first}, {last})");
        // Who holds which key: this run's records, and the card the setup added by hand.
        let found = backend
            .card_key_holders(
                1,
                &["6001000000000018", "6001000000000992", "6001000000000034"],
                &["CX00000001"],
            )
            .await
            .unwrap();
        let [numbers, external_ids] = &found.holders;
        // The stored values come with each card found by number, for the judge.
        let stored = &found.stored["6001000000000018"];
        assert_eq!((stored.series_id, stored.status_label.as_str()), (1, "NOT_ISSUED"));
        assert_eq!(stored.external_id.as_deref(), Some("CX00000001"));
        assert_eq!(found.stored.len(), 2);
        assert_eq!(
            numbers.get("6001000000000018"),
            Some(&Holder {
                run_id: Some(run.run_id),
                record: Some(1)
            })
        );
        assert_eq!(
            numbers.get("6001000000000992"),
            Some(&Holder {
                run_id: None,
                record: None
            })
        );
        assert!(!numbers.contains_key("6001000000000034"));
        assert_eq!(external_ids.get("CX00000001").and_then(|h| h.run_id), Some(run.run_id));
        // A taken key, on every store: that row is left out and named, the rest goes in
        // (PostgreSQL's COPY fails whole and is sent again without it).
        let again = [card(3, "6001000000000034", None), card(4, "6001000000000992", None)];
        let result = backend
            .insert_cards(&run, &again.iter().collect::<Vec<_>>())
            .await
            .unwrap();
        assert!(
            matches!(&result, CardInsert { ids: Some((one, other)), skipped } if one == other && skipped == &[1]),
            "{result:?}"
        );
        // Deleting a batch's cards frees their keys.
        backend.delete_cards(&run, (first, last)).await.unwrap();
        let found = backend.card_key_holders(1, &["6001000000000018"], &[]).await.unwrap();
        assert!(found.holders[0].is_empty() && found.stored.is_empty());
        // Every key of the org, for the key filter, and the org's card count.
        let mut keys = Vec::new();
        backend
            .for_each_card_key(1, &mut |key| keys.push(key.to_string()))
            .await
            .unwrap();
        keys.sort();
        let expected = ["6001000000000034", "6001000000000992"];
        assert_eq!(keys, expected);
        assert_eq!(backend.card_count(1).await.unwrap(), expected.len() as u64);
        backend.rollback().await.unwrap();
        backend.close().await.unwrap();
    });
}

fn external_ids_customers_rejects_and_events(backend_kind: Backend) {
    let ws = backend_kind.workspace();
    let (runtime, store) = open(&ws);
    runtime.block_on(async {
        let mut backend = store.import_backend(1, &start(false)).await.unwrap();
        let run = context(backend.as_ref());
        backend.begin().await.unwrap();
        // External IDs: the card as it stands, who holds an ID, and setting one.
        let cards = backend.cards_by_number(1, &["6001000000000992", "nope"]).await.unwrap();
        let card = cards.get("6001000000000992").expect("the setup's card");
        assert_eq!(card.external_id, None);
        let set = ExternalIdRow {
            record: 1,
            card_number: "6001000000000992".into(),
            external_id: "CX00000009".into(),
        };
        assert_eq!(backend.set_external_ids(&run, &[&set]).await.unwrap(), 1);
        let holders = backend.external_id_holders(1, &["CX00000009"]).await.unwrap();
        let set_by = Holder {
            run_id: Some(run.run_id),
            record: Some(1),
        };
        assert_eq!(
            holders.get("CX00000009"),
            Some(&("6001000000000992".to_string(), set_by))
        );
        let cards = backend.cards_by_number(1, &["6001000000000992"]).await.unwrap();
        assert_eq!(cards["6001000000000992"].external_id_set_by, set_by);
        // Customers: reserved external IDs, the rows' id range, and their holders.
        let format = cardbatch::numbers::NumberFormat::new("CX", "", 10, cardbatch::numbers::Method::Luhn).unwrap();
        let reserved = backend.reserve_external_ids(1, &format, 1, 2).await.unwrap();
        assert_eq!(reserved.len(), 2);
        assert_ne!(reserved[0], reserved[1]);
        let customers = [
            NewCustomer {
                record: 2,
                customer_id: 501,
                external_id: &reserved[0],
                generated: true,
            },
            NewCustomer {
                record: 3,
                customer_id: 502,
                external_id: &reserved[1],
                generated: true,
            },
        ];
        let (first, last) = backend.insert_customers(&run, &customers).await.unwrap().unwrap();
        assert_eq!(last, first + 1);
        let found = backend
            .customer_key_holders(1, &[501, 999], &[&reserved[1]])
            .await
            .unwrap();
        let [by_id, by_external_id] = &found.holders;
        assert_eq!(found.external_ids.keys().collect::<Vec<_>>(), ["501"]);
        assert_eq!(by_id.keys().collect::<Vec<_>>(), ["501"]);
        assert_eq!(
            by_external_id.get(&reserved[1]),
            Some(&Holder {
                run_id: Some(run.run_id),
                record: Some(3)
            })
        );
        assert_eq!(by_id["501"].record, Some(2));
        // Rejects, read back by page and counted by reason.
        let rejects = [
            reject(4, RejectReason::ChecksumInvalid),
            reject(5, RejectReason::ChecksumInvalid),
            reject(6, RejectReason::MissingField),
        ];
        backend.insert_rejects(&run, &rejects).await.unwrap();
        assert_eq!(backend.reject_page(1, run.run_id, 4, 10).await.unwrap(), rejects[1..]);
        let counts: HashMap<RejectReason, u64> = backend
            .reason_counts(1, run.run_id, 0)
            .await
            .unwrap()
            .into_iter()
            .collect();
        assert_eq!(counts[&RejectReason::ChecksumInvalid], 2);
        assert_eq!(counts[&RejectReason::MissingField], 1);
        // Events take the org's next ids at commit, in order.
        let created_at = run.created_at.clone();
        backend
            .insert_events(
                1,
                &[
                    PendingEvent::CustomersRegistered {
                        run_id: run.run_id,
                        first_row_id: first,
                        last_row_id: last,
                        count: 2,
                        created_at: created_at.clone(),
                    },
                    PendingEvent::ExternalIdSet {
                        run_id: run.run_id,
                        card_id: card.card_id,
                        card_number: "6001000000000992".into(),
                        external_id: "CX00000009".into(),
                        previous_external_id: None,
                        created_at,
                    },
                ],
            )
            .await
            .unwrap();
        backend.commit().await.unwrap();
        backend.close().await.unwrap();
        let events = store.event_page(1, 0, 100).await.unwrap();
        let kinds: Vec<&str> = events.iter().map(|e| e.kind.as_str()).collect();
        // The setup's `cards add`, then the two customers and the external ID.
        assert_eq!(
            kinds,
            [
                "card_created",
                "customer_registered",
                "customer_registered",
                "card_external_id_set"
            ]
        );
        let ids: Vec<i64> = events.iter().map(|e| e.id).collect();
        assert!(ids.windows(2).all(|w| w[1] == w[0] + 1), "{ids:?}");
        // The external ID's event names its card by the number it keeps.
        match &events[3].payload {
            EventPayload::ExternalIdSet { card_number, .. } => {
                assert_eq!(card_number.as_deref(), Some("6001000000000992"))
            }
            other => panic!("{other:?}"),
        }
        // Paging from any watermark, with pages that end inside the
        // customers' batch row, gives the same events.
        for limit in 1..=3 {
            for start in std::iter::once(0).chain(ids.iter().copied()) {
                let mut paged = Vec::new();
                let mut after = start;
                loop {
                    let page = store.event_page(1, after, limit).await.unwrap();
                    assert!(page.len() <= limit as usize);
                    let Some(last) = page.last() else { break };
                    after = last.id;
                    paged.extend(page.into_iter().map(|e| e.id));
                }
                let expected: Vec<i64> = ids.iter().copied().filter(|&id| id > start).collect();
                assert_eq!(paged, expected, "limit {limit}, after {start}");
            }
        }
    });
}

fn reject(record: u64, reason: RejectReason) -> RejectRow {
    RejectRow {
        record,
        line: record + 1,
        reason,
        field: "card_number".into(),
        message: "bad".into(),
        raw: format!("raw {record}"),
    }
}

fn a_dry_run_leaves_nothing(backend_kind: Backend) {
    let ws = backend_kind.workspace();
    let (runtime, store) = open(&ws);
    runtime.block_on(async {
        let mut backend = store.import_backend(1, &start(true)).await.unwrap();
        let run = context(backend.as_ref());
        backend.begin().await.unwrap();
        let rows = [card(1, "6001000000000018", None)];
        backend
            .insert_cards(&run, &rows.iter().collect::<Vec<_>>())
            .await
            .unwrap();
        backend.close().await.unwrap();
    });
    assert_eq!(
        ws.query_i64("SELECT count(*) FROM cards"),
        Some(1),
        "the setup's card only"
    );
    assert_eq!(ws.query_i64("SELECT count(*) FROM runs"), Some(0));
}

/// A second lane: PostgreSQL gives one on a connection of its own, whose
/// checkpoint waits for the first lane's commit once the first holds the
/// run, and whose cards take ids reserved after the first's even when they
/// go in first. SQLite has one writer and gives none.
fn a_second_lane_commits_after_the_first(backend_kind: Backend) {
    let ws = backend_kind.workspace();
    let (runtime, store) = open(&ws);
    runtime.block_on(async {
        let mut first = store.import_backend(1, &start(false)).await.unwrap();
        let run = context(first.as_ref());
        let lane = first.open_lane().await.unwrap();
        let Some(mut second) = lane else {
            assert_eq!(backend_kind, Backend::Sqlite);
            // Holding the run and reserving ids cost a single writer nothing.
            first.begin().await.unwrap();
            first.hold_run(&run).await.unwrap();
            first.reserve_card_ids(2).await.unwrap();
            first.commit().await.unwrap();
            first.close().await.unwrap();
            return;
        };
        assert_eq!(second.run().run_id, run.run_id);
        first.begin().await.unwrap();
        first.hold_run(&run).await.unwrap();
        first.reserve_card_ids(2).await.unwrap();
        second.begin().await.unwrap();
        second.reserve_card_ids(2).await.unwrap();
        // The second lane's cards go in first, with the higher ids.
        let later = [card(3, "6001000000000034", None), card(4, "6001000000000042", None)];
        let earlier = [card(1, "6001000000000018", None), card(2, "6001000000000026", None)];
        let ids_of = |insert: CardInsert| match insert {
            CardInsert { ids: Some(ids), .. } => ids,
            other => panic!("{other:?}"),
        };
        let later_ids = ids_of(
            second
                .insert_cards(&run, &later.iter().collect::<Vec<_>>())
                .await
                .unwrap(),
        );
        let earlier_ids = ids_of(
            first
                .insert_cards(&run, &earlier.iter().collect::<Vec<_>>())
                .await
                .unwrap(),
        );
        assert!(earlier_ids.0 < earlier_ids.1 && earlier_ids.1 < later_ids.0 && later_ids.0 < later_ids.1);
        // The second lane's checkpoint waits for the first's commit.
        let second_run = context(second.as_ref());
        let waiting = tokio::spawn(async move {
            second.checkpoint(&second_run, 4, &counts(2, 0)).await.unwrap();
            second
        });
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        assert!(!waiting.is_finished(), "the second lane's checkpoint did not wait");
        first.checkpoint(&run, 2, &counts(2, 0)).await.unwrap();
        first.commit().await.unwrap();
        let mut second = tokio::time::timeout(std::time::Duration::from_secs(10), waiting)
            .await
            .expect("the second lane's checkpoint ends once the first commits")
            .unwrap();
        second.commit().await.unwrap();
        let stored = store.find_run(1, run.run_id).await.unwrap().unwrap();
        assert_eq!((stored.records_committed, stored.inserted), (4, 4));
        second.close().await.unwrap();
        // The run's lock stays with the first lane until it closes.
        first.close().await.unwrap();
        store
            .import_backend(1, &start(false))
            .await
            .unwrap()
            .close()
            .await
            .unwrap();
    });
}

crate::on_every_backend!(
    a_second_lane_commits_after_the_first,
    transactions_savepoints_and_the_run,
    cards_keys_and_their_holders,
    external_ids_customers_rejects_and_events,
    a_dry_run_leaves_nothing,
);
