//! The audit log against each kind of tampering, a crash's torn line, and an independently
//! computed hash (Python `hashlib` over the canonical form as `docs/access.md` states it).

use std::fs;
use std::path::Path;

use chrono::{DateTime, Duration, Utc};
use trent_access::audit::{
    AccessEvent, AuditEntry, AuditError, AuditLog, AuditStore, Checkpoint, FileAuditStore,
    GENESIS_HASH, MemoryAuditStore, ProblemKind, canonical_form, entry_hash, verify,
};
use trent_access::model::{
    Action, InMemoryRelationships, OdsCode, PersonFacts, PersonId, Principal, Purpose,
    ResourceKind, Role, UserId,
};
use trent_access::{Flag, ReasonCode, Request, decide};

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn person(s: &str) -> PersonId {
    PersonId::new(s).unwrap()
}

/// Who, what, kind, about whom, why, which resource id.
type LoggedRequest<'a> = (
    &'a Principal,
    Action,
    ResourceKind,
    Option<PersonId>,
    Purpose,
    Option<&'a str>,
);

/// Six decided requests, recorded: allowed and denied, break-glass, several people.
fn write_log(path: &Path) -> (Checkpoint, Vec<AuditEntry>) {
    let mut rels = InMemoryRelationships::new();
    rels.insert(
        person("person-1"),
        PersonFacts {
            registered_practice: Some(OdsCode::new("C84001").unwrap()),
            ..Default::default()
        },
    );
    let mut dr = Principal::new(UserId::new("dr-a").unwrap(), Role::Clinician);
    dr.organisation = Some(OdsCode::new("C84001").unwrap());
    let mut me = Principal::new(UserId::new("citizen-2").unwrap(), Role::Citizen);
    me.person = Some(person("person-2"));
    let glass = Purpose::BreakGlass {
        reason: "collapsed in clinic".into(),
    };
    let requests: Vec<LoggedRequest<'_>> = vec![
        (
            &dr,
            Action::Read,
            ResourceKind::Condition,
            Some(person("person-1")),
            Purpose::DirectCare,
            Some("cond-1"),
        ),
        (
            &dr,
            Action::Read,
            ResourceKind::Condition,
            Some(person("person-2")),
            Purpose::DirectCare,
            Some("cond-9"),
        ),
        (
            &dr,
            Action::Read,
            ResourceKind::MedicationRequest,
            Some(person("person-2")),
            glass,
            None,
        ),
        (
            &me,
            Action::Search,
            ResourceKind::AuditEvent,
            Some(person("person-2")),
            Purpose::SelfAccess,
            None,
        ),
        (
            &me,
            Action::Read,
            ResourceKind::Condition,
            Some(person("person-1")),
            Purpose::SelfAccess,
            Some("cond-1"),
        ),
        (
            &dr,
            Action::Update,
            ResourceKind::Observation,
            Some(person("person-1")),
            Purpose::DirectCare,
            Some("obs.7"),
        ),
    ];
    let mut log = AuditLog::open(FileAuditStore::open(path).unwrap()).unwrap();
    let mut now = t("2025-06-30T09:00:00.5Z");
    let mut entries = Vec::new();
    for (p, action, kind, subject, purpose, id) in &requests {
        let req = Request {
            principal: p,
            action: *action,
            kind: *kind,
            subject: subject.as_ref(),
            purpose,
        };
        let d = decide(p, *action, *kind, subject.as_ref(), purpose, now, &rels);
        entries.push(log.record(AccessEvent::new(&req, *id, &d), now).unwrap());
        now += Duration::milliseconds(1500);
    }
    (log.head().unwrap().clone(), entries)
}

fn lines(path: &Path) -> Vec<String> {
    fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

fn write_lines(path: &Path, lines: &[String]) {
    fs::write(
        path,
        lines.iter().map(|l| format!("{l}\n")).collect::<String>(),
    )
    .unwrap();
}

fn kinds_at(path: &Path, checkpoint: Option<&Checkpoint>) -> Vec<(u64, ProblemKind)> {
    let store = FileAuditStore::open(path).unwrap();
    let report = verify(&store, checkpoint).unwrap();
    report
        .problems
        .into_iter()
        .map(|p| (p.line, p.kind))
        .collect()
}

#[test]
fn an_untouched_log_verifies_and_chains() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let (head, entries) = write_log(&path);
    assert_eq!(head.seq, 6);
    assert_eq!(entries[0].prev_hash, GENESIS_HASH);
    for pair in entries.windows(2) {
        assert_eq!(pair[1].prev_hash, pair[0].hash);
        assert_eq!(pair[1].seq, pair[0].seq + 1);
    }
    // The decisions were recorded as decided, including the denial and the break-glass.
    assert!(entries[0].allowed);
    assert_eq!(entries[1].reason_code, ReasonCode::NoCareRelationship);
    assert_eq!(entries[2].flags, vec![Flag::BreakGlassReview]);
    assert_eq!(entries[4].reason_code, ReasonCode::NotOwnRecord);
    let store = FileAuditStore::open(&path).unwrap();
    let report = verify(&store, Some(&head)).unwrap();
    assert!(report.is_clean(), "{:?}", report.problems);
    assert_eq!(report.lines, 6);
    assert_eq!(report.head.as_ref(), Some(&head));
    // Reopening continues the chain.
    let mut log = AuditLog::open(store).unwrap();
    assert_eq!(log.head(), Some(&head));
    let next = entries[0].clone();
    let event = AccessEvent {
        who: next.who,
        role: next.role,
        organisation: next.organisation,
        purpose: next.purpose,
        action: next.action,
        resource_type: next.resource_type,
        resource_id: next.resource_id,
        subject_person: next.subject_person,
        allowed: next.allowed,
        reason_code: next.reason_code,
        flags: next.flags,
    };
    let e7 = log.record(event, t("2025-06-30T10:00:00Z")).unwrap();
    assert_eq!((e7.seq, e7.prev_hash.as_str()), (7, head.hash.as_str()));
    assert!(verify(log.store(), None).unwrap().is_clean());
    // No secrets or clinical content: the stored line holds ids and codes only.
    let text = fs::read_to_string(&path).unwrap();
    assert!(!text.contains("password") && !text.contains("token"));
}

#[test]
fn editing_a_field_is_a_hash_mismatch_at_that_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    write_log(&path);
    let mut l = lines(&path);
    assert!(l[1].contains(r#""decision":"deny""#));
    l[1] = l[1].replace(r#""decision":"deny""#, r#""decision":"allow""#);
    write_lines(&path, &l);
    assert_eq!(
        kinds_at(&path, None),
        vec![(2, ProblemKind::HashMismatch { seq: 2 })]
    );
}

#[test]
fn a_rehashed_edit_breaks_the_chain_at_the_next_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    write_log(&path);
    let mut l = lines(&path);
    let mut e = AuditEntry::from_json_line(&l[2]).unwrap();
    e.who = UserId::new("someone-else").unwrap();
    e.hash = entry_hash(&e);
    l[2] = e.to_json_line();
    write_lines(&path, &l);
    assert_eq!(
        kinds_at(&path, None),
        vec![(4, ProblemKind::ChainBroken { seq: 4 })]
    );
}

#[test]
fn rewriting_the_whole_chain_is_caught_only_by_the_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let (head, _) = write_log(&path);
    let mut prev = GENESIS_HASH.to_string();
    let rewritten: Vec<String> = lines(&path)
        .iter()
        .map(|line| {
            let mut e = AuditEntry::from_json_line(line).unwrap();
            if e.seq == 2 {
                e.allowed = true;
                e.reason_code = ReasonCode::RegisteredPractice;
            }
            e.prev_hash = prev.clone();
            e.hash = entry_hash(&e);
            prev = e.hash.clone();
            e.to_json_line()
        })
        .collect();
    write_lines(&path, &rewritten);
    assert_eq!(
        kinds_at(&path, None),
        vec![],
        "a consistent forgery verifies without a checkpoint"
    );
    assert_eq!(
        kinds_at(&path, Some(&head)),
        vec![(6, ProblemKind::CheckpointMismatch { seq: 6 })]
    );
}

#[test]
fn deleting_a_line_is_a_gap_and_a_broken_chain() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    write_log(&path);
    let mut l = lines(&path);
    l.remove(2);
    write_lines(&path, &l);
    assert_eq!(
        kinds_at(&path, None),
        vec![
            (
                3,
                ProblemKind::SequenceGap {
                    expected: 3,
                    found: 4
                }
            ),
            (3, ProblemKind::ChainBroken { seq: 4 }),
        ]
    );
    // Deleting the first line too.
    let mut l = lines(&path);
    l.remove(0);
    write_lines(&path, &l);
    let found = kinds_at(&path, None);
    assert_eq!(
        found[0],
        (
            1,
            ProblemKind::SequenceGap {
                expected: 1,
                found: 2
            }
        )
    );
    assert_eq!(found[1], (1, ProblemKind::ChainBroken { seq: 2 }));
}

#[test]
fn swapping_two_lines_is_out_of_order() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    write_log(&path);
    let mut l = lines(&path);
    l.swap(2, 3);
    write_lines(&path, &l);
    assert_eq!(
        kinds_at(&path, None),
        vec![
            (
                3,
                ProblemKind::SequenceGap {
                    expected: 3,
                    found: 4
                }
            ),
            (3, ProblemKind::ChainBroken { seq: 4 }),
            (
                4,
                ProblemKind::SequenceOutOfOrder {
                    expected: 5,
                    found: 3
                }
            ),
            (4, ProblemKind::ChainBroken { seq: 3 }),
            (
                5,
                ProblemKind::SequenceGap {
                    expected: 4,
                    found: 5
                }
            ),
            (5, ProblemKind::ChainBroken { seq: 5 }),
        ]
    );
}

#[test]
fn an_inserted_forged_line_is_caught_at_the_line_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    write_log(&path);
    let mut l = lines(&path);
    // A well-formed forgery: correct seq, prev_hash and hash for its place.
    let before = AuditEntry::from_json_line(&l[2]).unwrap();
    let mut forged = before.clone();
    forged.seq = 4;
    forged.subject_person = Some(person("person-9"));
    forged.prev_hash = before.hash.clone();
    forged.hash = entry_hash(&forged);
    l.insert(3, forged.to_json_line());
    write_lines(&path, &l);
    assert_eq!(
        kinds_at(&path, None),
        vec![
            (
                5,
                ProblemKind::SequenceOutOfOrder {
                    expected: 5,
                    found: 4
                }
            ),
            (5, ProblemKind::ChainBroken { seq: 4 }),
        ]
    );
}

#[test]
fn truncation_from_the_end_needs_the_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let (head, _) = write_log(&path);
    let l = lines(&path);
    write_lines(&path, &l[..4]);
    assert_eq!(
        kinds_at(&path, None),
        vec![],
        "a shorter chain is still a valid chain"
    );
    assert_eq!(
        kinds_at(&path, Some(&head)),
        vec![(
            0,
            ProblemKind::Truncated {
                checkpoint_seq: 6,
                last_seq: 4
            }
        )]
    );
    let parsed: Checkpoint = head.to_string().parse().unwrap();
    assert_eq!(parsed, head);
    assert!("6:xyz".parse::<Checkpoint>().is_err());
    assert!("0:".parse::<Checkpoint>().is_err());
}

#[test]
fn a_malformed_line_is_reported_with_its_line_number() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    write_log(&path);
    let mut l = lines(&path);
    l[1] = l[1].replace(r#""role":"clinician""#, r#""role":"superuser""#);
    write_lines(&path, &l);
    let found = kinds_at(&path, None);
    assert_eq!(found.len(), 1, "{found:?}");
    match &found[0] {
        (2, ProblemKind::Malformed(d)) => assert!(d.contains("field role"), "{d}"),
        other => panic!("{other:?}"),
    }
    let log = AuditLog::open(FileAuditStore::open(&path).unwrap()).unwrap();
    match log.for_person(&person("person-1")) {
        Err(AuditError::Malformed { line: 2, .. }) => {}
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_torn_last_line_is_a_crash_not_tampering_and_is_set_aside() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let (head, _) = write_log(&path);
    let mut bytes = fs::read(&path).unwrap();
    bytes.extend_from_slice(br#"{"seq":7,"time":"2025-06-30T1"#);
    fs::write(&path, &bytes).unwrap();
    let mut store = FileAuditStore::open(&path).unwrap();
    assert_eq!(store.torn_tail(), Some(7));
    let report = verify(&store, Some(&head)).unwrap();
    assert!(report.untampered(), "{:?}", report.problems);
    assert!(!report.is_clean());
    assert_eq!(
        report.torn_tail.as_ref().map(|t| (t.line, t.bytes)),
        Some((7, 29))
    );
    assert!(matches!(
        store.append_line("{}"),
        Err(AuditError::TornTail { line: 7 })
    ));
    let store2 = FileAuditStore::open(&path).unwrap();
    assert!(matches!(
        AuditLog::open(store2),
        Err(AuditError::TornTail { line: 7 })
    ));
    // The citizen's view ignores the never-acknowledged torn line.
    let moved = store.repair_torn_tail().unwrap().unwrap();
    assert_eq!(moved, br#"{"seq":7,"time":"2025-06-30T1"#.to_vec());
    let side = fs::read(dir.path().join("audit.jsonl.torn")).unwrap();
    assert!(side.starts_with(br#"{"seq":7"#));
    assert!(verify(&store, Some(&head)).unwrap().is_clean());
    let mut log = AuditLog::open(store).unwrap();
    let e = AuditEntry::from_json_line(&lines(&path)[0]).unwrap();
    let event = AccessEvent {
        who: e.who,
        role: e.role,
        organisation: e.organisation,
        purpose: e.purpose,
        action: e.action,
        resource_type: e.resource_type,
        resource_id: e.resource_id,
        subject_person: e.subject_person,
        allowed: e.allowed,
        reason_code: e.reason_code,
        flags: e.flags,
    };
    log.record(event, t("2025-06-30T11:00:00Z")).unwrap();
    let report = verify(log.store(), Some(&head)).unwrap();
    assert!(report.is_clean(), "{:?}", report.problems);
    assert_eq!(report.head.unwrap().seq, 7);
}

#[test]
fn for_person_lists_every_access_to_a_record() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    write_log(&path);
    let log = AuditLog::open(FileAuditStore::open(&path).unwrap()).unwrap();
    let p2 = log.for_person(&person("person-2")).unwrap();
    assert_eq!(p2.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![2, 3, 4]);
    assert!(!p2[0].allowed, "denied attempts are listed too");
    assert_eq!(p2[1].purpose.reason(), Some("collapsed in clinic"));
    let p1 = log.for_person(&person("person-1")).unwrap();
    assert_eq!(p1.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![1, 5, 6]);
    assert!(log.for_person(&person("person-3")).unwrap().is_empty());
}

#[test]
fn break_glass_reasons_are_cleaned_and_bad_ids_refused() {
    let mut log = AuditLog::open(MemoryAuditStore::new()).unwrap();
    let event = AccessEvent {
        who: UserId::new("dr-a").unwrap(),
        role: Role::Clinician,
        organisation: None,
        purpose: Purpose::BreakGlass {
            reason: format!("line one\nline two{}", "x".repeat(300)),
        },
        action: Action::Read,
        resource_type: ResourceKind::Condition,
        resource_id: None,
        subject_person: Some(person("p")),
        allowed: false,
        reason_code: ReasonCode::BreakGlassReasonInvalid,
        flags: vec![],
    };
    let e = log
        .record(event.clone(), t("2025-06-30T11:00:00Z"))
        .unwrap();
    let reason = e.purpose.reason().unwrap();
    assert!(reason.starts_with("line one line two"));
    assert_eq!(reason.chars().count(), 200);
    assert!(verify(log.store(), None).unwrap().is_clean());
    let mut bad = event;
    bad.resource_id = Some("a b".into());
    match log.record(bad, t("2025-06-30T11:00:01Z")) {
        Err(AuditError::InvalidField {
            field: "resource_id",
            ..
        }) => {}
        other => panic!("{other:?}"),
    }
}

#[test]
fn hashes_match_an_independent_implementation() {
    // Expected values computed with Python's hashlib from the canonical form as written in
    // docs/access.md, not from this crate's output.
    let mut e = AuditEntry {
        seq: 1,
        time: t("2025-06-30T12:00:00.123456Z"),
        who: UserId::new("dr-a").unwrap(),
        role: Role::Clinician,
        organisation: Some(OdsCode::new("C84001").unwrap()),
        purpose: Purpose::BreakGlass {
            reason: "unconscious, no history".into(),
        },
        action: Action::Read,
        resource_type: ResourceKind::Condition,
        resource_id: Some("c-1".into()),
        subject_person: Some(person("person-1")),
        allowed: true,
        reason_code: ReasonCode::BreakGlass,
        flags: vec![Flag::BreakGlassReview],
        prev_hash: GENESIS_HASH.into(),
        hash: String::new(),
    };
    assert!(
        canonical_form(&e).starts_with("trent-audit-v1\nseq=1\ntime=2025-06-30T12:00:00.123456Z\n")
    );
    assert_eq!(
        entry_hash(&e),
        "2fad5e4e83853b5b59ec74f0e3cb0e477ccd180b55c1a51176d16d47e4510efa"
    );
    e.hash = entry_hash(&e);
    let second = AuditEntry {
        seq: 2,
        time: t("2025-06-30T12:00:01Z"),
        who: UserId::new("analyst-1").unwrap(),
        role: Role::Analyst,
        organisation: None,
        purpose: Purpose::Secondary,
        action: Action::Search,
        resource_type: ResourceKind::PseudonymisedExtract,
        resource_id: None,
        subject_person: None,
        allowed: true,
        reason_code: ReasonCode::PseudonymisedSecondaryUse,
        flags: vec![Flag::ExcludeOptedOut],
        prev_hash: e.hash.clone(),
        hash: String::new(),
    };
    assert_eq!(
        entry_hash(&second),
        "d9e9d91d87221b10a0ccef68dd75daefbbf8a21ad36ab835b4d6a38c96ff27cf"
    );
    // The JSON line round-trips exactly.
    assert_eq!(AuditEntry::from_json_line(&e.to_json_line()).unwrap(), e);
}
