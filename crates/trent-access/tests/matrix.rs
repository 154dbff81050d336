//! The access matrix: every role × purpose × resource kind × action × situation (the
//! subject's relationship to the principal), decided by `decide` and compared with an
//! independent rule table written here as data, first matching row wins. The table is the
//! executable form of the rules in `docs/access.md`; it does not call `decide`.

use chrono::{DateTime, Duration, Utc};
use trent_access::model::{
    Action, CareEpisode, CarerGrant, EpisodeKind, InMemoryRelationships, OdsCode, PersonFacts,
    PersonId, Principal, Purpose, ResourceKind, Role, TeamId, UserId,
};
use trent_access::scopes::parse_scopes;
use trent_access::{Flag, ReasonCode, decide};

fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2025-06-30T12:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

const PRACTICE: &str = "C84001";
const OTHER_ORG: &str = "RX1";
const TEAM: &str = "T1";
const CARER: &str = "carer-1";

/// The situations: a name per subject, each a person with one kind of relationship to the
/// principals below ("none" is no subject at all).
const SITUATIONS: [&str; 17] = [
    "none",
    "unrelated",
    "self",
    "registered",
    "registered-elsewhere",
    "open-encounter",
    "open-referral",
    "recent-closed",
    "old-closed",
    "open-elsewhere",
    "caseload",
    "caseload-other",
    "carer-active",
    "carer-other-carer",
    "carer-revoked",
    "carer-expired",
    "opt-out",
];

/// The person id of a situation's subject (distinct from any word an explanation uses).
fn pid(situation: &str) -> PersonId {
    PersonId::new(format!("person-{situation}")).unwrap()
}

fn ods(s: &str) -> OdsCode {
    OdsCode::new(s).unwrap()
}

fn episode(kind: EpisodeKind, org: &str, end_days_ago: Option<i64>) -> CareEpisode {
    CareEpisode {
        kind,
        organisation: ods(org),
        start: now() - Duration::days(500),
        end: end_days_ago.map(|d| now() - Duration::days(d)),
    }
}

fn grant(
    carer: &str,
    kinds: &[ResourceKind],
    expires: Option<i64>,
    revoked: Option<i64>,
) -> CarerGrant {
    CarerGrant {
        carer: UserId::new(carer).unwrap(),
        kinds: kinds.to_vec(),
        expires: expires.map(|d| now() + Duration::days(d)),
        revoked: revoked.map(|d| now() + Duration::days(d)),
    }
}

const SHARED: [ResourceKind; 4] = [
    ResourceKind::Patient,
    ResourceKind::Condition,
    ResourceKind::MedicationRequest,
    ResourceKind::CarePlan,
];

fn world() -> InMemoryRelationships {
    let mut rels = InMemoryRelationships::new();
    for s in SITUATIONS.iter().skip(1) {
        let mut f = PersonFacts::default();
        match *s {
            "registered" => f.registered_practice = Some(ods(PRACTICE)),
            "registered-elsewhere" => f.registered_practice = Some(ods("C84002")),
            "open-encounter" => f
                .episodes
                .push(episode(EpisodeKind::Encounter, PRACTICE, None)),
            "open-referral" => f
                .episodes
                .push(episode(EpisodeKind::Referral, PRACTICE, None)),
            "recent-closed" => {
                f.episodes
                    .push(episode(EpisodeKind::EpisodeOfCare, PRACTICE, Some(10)))
            }
            "old-closed" => f
                .episodes
                .push(episode(EpisodeKind::Encounter, PRACTICE, Some(400))),
            "open-elsewhere" => f
                .episodes
                .push(episode(EpisodeKind::Encounter, OTHER_ORG, None)),
            "caseload" => f.caseload_teams.push(TeamId::new(TEAM).unwrap()),
            "caseload-other" => f.caseload_teams.push(TeamId::new("T2").unwrap()),
            "carer-active" => f.carer_grants.push(grant(CARER, &SHARED, Some(30), None)),
            "carer-other-carer" => {
                f.carer_grants
                    .push(grant("carer-2", ResourceKind::ALL, None, None))
            }
            "carer-revoked" => f
                .carer_grants
                .push(grant(CARER, ResourceKind::ALL, None, Some(-1))),
            "carer-expired" => f
                .carer_grants
                .push(grant(CARER, ResourceKind::ALL, Some(-1), None)),
            "opt-out" => {
                f.registered_practice = Some(ods(PRACTICE));
                f.national_opt_out = true;
            }
            "unrelated" | "self" => {}
            other => panic!("situation {other} has no fixture"),
        }
        rels.insert(pid(s), f);
    }
    rels
}

fn principal(role: Role) -> Principal {
    let mut p = Principal::new(UserId::new(format!("{}-user", role.code())).unwrap(), role);
    match role {
        Role::Clinician | Role::CaseManager => {
            p.organisation = Some(ods(PRACTICE));
            p.team = Some(TeamId::new(TEAM).unwrap());
        }
        Role::Citizen => p.person = Some(pid("self")),
        Role::Carer => p.user = UserId::new(CARER).unwrap(),
        Role::Analyst | Role::Administrator => p.organisation = Some(ods("52R")),
        Role::System => {
            p.scopes = Some(
                parse_scopes(
                    "system/*.read system/Observation.write system/Patient.c system/Account.r",
                )
                .unwrap(),
            );
        }
    }
    p
}

const PURPOSES: [&str; 7] = [
    "direct-care",
    "self-access",
    "carer-access",
    "secondary",
    "administration",
    "break-glass",
    "break-glass-blank",
];

fn purpose(label: &str) -> Purpose {
    match label {
        "direct-care" => Purpose::DirectCare,
        "self-access" => Purpose::SelfAccess,
        "carer-access" => Purpose::CarerAccess,
        "secondary" => Purpose::Secondary,
        "administration" => Purpose::Administration,
        "break-glass" => Purpose::BreakGlass {
            reason: "collapsed in clinic, unable to give history".into(),
        },
        "break-glass-blank" => Purpose::BreakGlass {
            reason: "  ".into(),
        },
        other => panic!("purpose {other}"),
    }
}

fn action_letter(a: Action) -> char {
    match a {
        Action::Create => 'c',
        Action::Read => 'r',
        Action::Update => 'u',
        Action::Delete => 'd',
        Action::Search => 's',
    }
}

fn kind_in_class(kind: ResourceKind, class: &str) -> bool {
    use ResourceKind::*;
    match class {
        "clinical" => matches!(
            kind,
            Patient
                | Encounter
                | EpisodeOfCare
                | Condition
                | Observation
                | MedicationRequest
                | ServiceRequest
                | AllergyIntolerance
                | CarePlan
        ),
        "record" => kind_in_class(kind, "clinical") || kind == Consent,
        "audit" => kind == AuditEvent,
        "worklist" => kind == Worklist,
        "extract" => kind == PseudonymisedExtract,
        "aggregate" => kind == Aggregate,
        "account" => kind == Account,
        name => {
            kind.code() == name || {
                assert!(
                    ResourceKind::from_code(name).is_some(),
                    "unknown kind class {name}"
                );
                false
            }
        }
    }
}

/// `*`, a comma list, or `!` and a comma list.
fn list_matches(pattern: &str, test: impl Fn(&str) -> bool) -> bool {
    if pattern == "*" {
        return true;
    }
    let (negate, list) = match pattern.strip_prefix('!') {
        Some(rest) => (true, rest),
        None => (false, pattern),
    };
    list.split(',').any(test) != negate
}

fn role_matches(pattern: &str, role: Role) -> bool {
    list_matches(pattern, |r| match r {
        "staff" => matches!(role, Role::Clinician | Role::CaseManager),
        code => {
            assert!(Role::from_code(code).is_some(), "unknown role {code}");
            role.code() == code
        }
    })
}

type Row = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
);

/// role, purpose, kinds, actions, situations → outcome (`allow:code` / `deny:code`), flag.
/// First matching row wins.
#[rustfmt::skip]
const RULES: &[Row] = &[
    // Global rules.
    ("*", "*", "audit", "cud", "*", "deny:audit-append-only", ""),
    ("*", "*", "record", "d", "*", "deny:records-are-not-deleted", ""),
    // Purposes by role.
    ("citizen", "!self-access", "*", "*", "*", "deny:purpose-not-permitted-for-role", ""),
    ("carer", "!carer-access", "*", "*", "*", "deny:purpose-not-permitted-for-role", ""),
    ("staff", "!direct-care,break-glass,break-glass-blank", "*", "*", "*", "deny:purpose-not-permitted-for-role", ""),
    ("analyst", "!secondary", "*", "*", "*", "deny:purpose-not-permitted-for-role", ""),
    ("administrator", "!administration", "*", "*", "*", "deny:purpose-not-permitted-for-role", ""),
    ("system", "!direct-care,secondary,administration", "*", "*", "*", "deny:purpose-not-permitted-for-role", ""),
    // Clinicians and case managers.
    ("staff", "break-glass,break-glass-blank", "worklist", "*", "*", "deny:break-glass-not-applicable", ""),
    ("staff", "*", "worklist", "cd", "*", "deny:action-not-permitted-for-role", ""),
    ("staff", "*", "worklist", "*", "*", "allow:team-worklist", ""),
    ("staff", "*", "audit,extract,aggregate,account", "*", "*", "deny:not-permitted-for-role", ""),
    ("staff", "break-glass-blank", "record", "*", "*", "deny:break-glass-reason-invalid", ""),
    ("staff", "break-glass", "record", "cu", "*", "deny:break-glass-read-only", ""),
    ("staff", "break-glass", "record", "*", "none", "deny:subject-required", ""),
    ("staff", "break-glass", "record", "*", "*", "allow:break-glass", "break-glass-review"),
    ("clinician", "*", "Patient", "c", "*", "deny:action-not-permitted-for-role", ""),
    ("clinician", "*", "Consent", "cu", "*", "deny:action-not-permitted-for-role", ""),
    ("case-manager", "*", "Patient,Condition,Observation,MedicationRequest,AllergyIntolerance,Consent", "cu", "*", "deny:action-not-permitted-for-role", ""),
    ("staff", "*", "record", "*", "none", "deny:subject-required", ""),
    ("staff", "*", "record", "*", "registered,opt-out", "allow:registered-practice", ""),
    ("staff", "*", "record", "*", "open-encounter,open-referral,recent-closed", "allow:care-episode", ""),
    ("staff", "*", "record", "*", "caseload", "allow:caseload", ""),
    ("staff", "*", "record", "*", "*", "deny:no-care-relationship", ""),
    // Citizens.
    ("citizen", "*", "worklist,extract,aggregate,account", "*", "*", "deny:not-permitted-for-role", ""),
    ("citizen", "*", "clinical", "cu", "*", "deny:action-not-permitted-for-role", ""),
    ("citizen", "*", "*", "*", "none", "deny:subject-required", ""),
    ("citizen", "*", "*", "*", "self", "allow:self-access", ""),
    ("citizen", "*", "*", "*", "*", "deny:not-own-record", ""),
    // Carers.
    ("carer", "*", "!record", "*", "*", "deny:not-permitted-for-role", ""),
    ("carer", "*", "*", "cu", "*", "deny:action-not-permitted-for-role", ""),
    ("carer", "*", "*", "*", "none", "deny:subject-required", ""),
    ("carer", "*", "Patient,Condition,MedicationRequest,CarePlan", "*", "carer-active", "allow:carer-grant", ""),
    ("carer", "*", "*", "*", "carer-active", "deny:kind-not-granted", ""),
    ("carer", "*", "*", "*", "carer-revoked", "deny:carer-grant-revoked", ""),
    ("carer", "*", "*", "*", "carer-expired", "deny:carer-grant-expired", ""),
    ("carer", "*", "*", "*", "*", "deny:no-carer-grant", ""),
    // Analysts.
    ("analyst", "*", "record,audit,worklist", "*", "*", "deny:identifiable-data-not-for-secondary-use", ""),
    ("analyst", "*", "account", "*", "*", "deny:not-permitted-for-role", ""),
    ("analyst", "*", "*", "cud", "*", "deny:action-not-permitted-for-role", ""),
    ("analyst", "*", "aggregate", "*", "none", "allow:aggregate-secondary-use", "suppress-small-numbers"),
    ("analyst", "*", "aggregate", "*", "*", "deny:subject-not-allowed", ""),
    ("analyst", "*", "extract", "*", "none", "allow:pseudonymised-secondary-use", "exclude-opted-out"),
    ("analyst", "*", "extract", "*", "opt-out", "deny:national-data-opt-out", ""),
    ("analyst", "*", "extract", "*", "*", "allow:pseudonymised-secondary-use", ""),
    // Administrators.
    ("administrator", "*", "account", "d", "*", "deny:action-not-permitted-for-role", ""),
    ("administrator", "*", "account", "*", "*", "allow:account-administration", ""),
    ("administrator", "*", "audit", "*", "*", "allow:audit-review", ""),
    ("administrator", "*", "record,worklist", "*", "*", "deny:no-clinical-content-for-administrators", ""),
    ("administrator", "*", "*", "*", "*", "deny:not-permitted-for-role", ""),
    // Systems, holding system/*.read system/Observation.write system/Patient.c system/Account.r.
    ("system", "direct-care", "!record,worklist", "*", "*", "deny:purpose-not-applicable", ""),
    ("system", "secondary", "!extract,aggregate", "*", "*", "deny:purpose-not-applicable", ""),
    ("system", "administration", "!account,audit", "*", "*", "deny:purpose-not-applicable", ""),
    ("system", "*", "account", "d", "*", "deny:action-not-permitted-for-role", ""),
    ("system", "secondary", "*", "cud", "*", "deny:action-not-permitted-for-role", ""),
    ("system", "*", "Observation", "cu", "*", "allow:system-scope", ""),
    ("system", "*", "Patient", "c", "*", "allow:system-scope", ""),
    ("system", "*", "*", "cud", "*", "deny:scope-not-granted", ""),
    ("system", "*", "aggregate", "*", "none", "allow:aggregate-secondary-use", "suppress-small-numbers"),
    ("system", "*", "aggregate", "*", "*", "deny:subject-not-allowed", ""),
    ("system", "*", "extract", "*", "none", "allow:pseudonymised-secondary-use", "exclude-opted-out"),
    ("system", "*", "extract", "*", "opt-out", "deny:national-data-opt-out", ""),
    ("system", "*", "extract", "*", "*", "allow:pseudonymised-secondary-use", ""),
    ("system", "*", "*", "*", "*", "allow:system-scope", ""),
];

struct Expected {
    allow: bool,
    reason: ReasonCode,
    flags: Vec<Flag>,
    row: usize,
}

fn expected(
    role: Role,
    purpose: &str,
    kind: ResourceKind,
    action: Action,
    situation: &str,
) -> Expected {
    for (i, (r, p, k, a, s, outcome, flag)) in RULES.iter().enumerate() {
        let hit = role_matches(r, role)
            && list_matches(p, |x| {
                assert!(PURPOSES.contains(&x), "unknown purpose {x} in row {i}");
                x == purpose
            })
            && list_matches(k, |x| kind_in_class(kind, x))
            && (*a == "*" || a.contains(action_letter(action)))
            && list_matches(s, |x| {
                assert!(SITUATIONS.contains(&x), "unknown situation {x} in row {i}");
                x == situation
            });
        if hit {
            let (verdict, code) = outcome.split_once(':').unwrap();
            return Expected {
                allow: verdict == "allow",
                reason: ReasonCode::from_code(code)
                    .unwrap_or_else(|| panic!("row {i}: unknown code {code}")),
                flags: if flag.is_empty() {
                    vec![]
                } else {
                    vec![Flag::from_code(flag).unwrap()]
                },
                row: i,
            };
        }
    }
    panic!("no rule for {role} {purpose} {kind} {action} {situation}");
}

#[test]
fn every_cell_of_the_access_matrix() {
    let rels = world();
    let mut cells = 0usize;
    let mut allowed = 0usize;
    let mut rows_used = vec![0usize; RULES.len()];
    let mut failures = Vec::new();
    for &role in Role::ALL {
        let p = principal(role);
        for label in PURPOSES {
            let purpose = purpose(label);
            for &kind in ResourceKind::ALL {
                for &action in Action::ALL {
                    for situation in SITUATIONS {
                        let subject = (situation != "none").then(|| pid(situation));
                        let d = decide(&p, action, kind, subject.as_ref(), &purpose, now(), &rels);
                        let e = expected(role, label, kind, action, situation);
                        rows_used[e.row] += 1;
                        cells += 1;
                        let identifiable = e.allow
                            && (kind_in_class(kind, "record")
                                || matches!(
                                    kind,
                                    ResourceKind::AuditEvent | ResourceKind::Worklist
                                ));
                        if d.allow != e.allow
                            || d.reason != e.reason
                            || d.flags != e.flags
                            || d.identifiable != identifiable
                        {
                            failures.push(format!(
                                "{role} {label} {kind} {action} {situation}: got {} {} {:?} ident={}, expected {} {} {:?} ident={} (row {})",
                                d.allow, d.reason, d.flags, d.identifiable, e.allow, e.reason, e.flags, identifiable, e.row
                            ));
                        }
                        assert_eq!(d.allow, d.reason.is_allow(), "allow and reason agree");
                        assert!(!d.explanation.is_empty());
                        if d.allow {
                            allowed += 1;
                        }
                    }
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {cells} cells differ:\n{}",
        failures.len(),
        failures[..failures.len().min(40)].join("\n")
    );
    assert_eq!(cells, 7 * 7 * 15 * 5 * 17);
    // Every rule row decides at least one cell, so no row is dead text.
    let dead: Vec<_> = rows_used
        .iter()
        .enumerate()
        .filter(|(_, n)| **n == 0)
        .map(|(i, _)| RULES[i])
        .collect();
    assert!(dead.is_empty(), "rows never used: {dead:?}");
    assert!(allowed > 0 && allowed < cells);
}

#[test]
fn explanations_hold_no_person_ids() {
    let rels = world();
    for &role in Role::ALL {
        let p = principal(role);
        for label in PURPOSES {
            for situation in SITUATIONS.iter().skip(1) {
                let subject = pid(situation);
                let d = decide(
                    &p,
                    Action::Read,
                    ResourceKind::Condition,
                    Some(&subject),
                    &purpose(label),
                    now(),
                    &rels,
                );
                assert!(
                    !d.explanation.contains(subject.as_str()),
                    "{}",
                    d.explanation
                );
            }
        }
    }
}

#[test]
fn opt_out_never_affects_direct_care() {
    let rels = world();
    let opted = pid("opt-out");
    for role in [Role::Clinician, Role::CaseManager] {
        let d = decide(
            &principal(role),
            Action::Read,
            ResourceKind::Condition,
            Some(&opted),
            &Purpose::DirectCare,
            now(),
            &rels,
        );
        assert!(d.allow, "{role}");
        let d = decide(
            &principal(role),
            Action::Read,
            ResourceKind::Condition,
            Some(&opted),
            &purpose("break-glass"),
            now(),
            &rels,
        );
        assert!(d.allow, "{role}");
    }
    let d = decide(
        &principal(Role::Analyst),
        Action::Read,
        ResourceKind::PseudonymisedExtract,
        Some(&opted),
        &Purpose::Secondary,
        now(),
        &rels,
    );
    assert_eq!(d.reason, ReasonCode::NationalDataOptOut);
}

#[test]
fn a_system_without_scopes_is_denied() {
    let rels = world();
    let p = Principal::new(UserId::new("feed").unwrap(), Role::System);
    let d = decide(
        &p,
        Action::Read,
        ResourceKind::Patient,
        None,
        &Purpose::DirectCare,
        now(),
        &rels,
    );
    assert_eq!(d.reason, ReasonCode::NoScopes);
    assert!(!d.allow && !d.identifiable);
}
