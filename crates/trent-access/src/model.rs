//! The vocabulary of an access decision: who asks (a [`Principal`] with a [`Role`]), why
//! ([`Purpose`]), for what ([`ResourceKind`], [`Action`]), about whom ([`PersonId`]), and the
//! facts about that person that the decision needs, which the record store supplies through
//! the [`Relationships`] trait.
//!
//! Why a trait for the facts: the decision must be the same whether the record lives in
//! SQLite, PostgreSQL or a test fixture, so this crate holds no storage at all. The store
//! answers narrow questions ("which practice is this person registered with?") and the
//! decision module does all the reasoning, where it can be tested exhaustively.
//!
//! Identifiers are validated when they are built, so a decision or an audit entry can never
//! carry an empty id or one with control characters in it (the audit's canonical form relies
//! on that, see `docs/access.md`).

use std::collections::HashMap;
use std::fmt;

use chrono::{DateTime, Utc};
use thiserror::Error;

use crate::scopes::Scope;

/// An identifier that failed validation: what kind of id, the offending text and why.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("invalid {what} {value:?}: {why}")]
pub struct IdError {
    /// Which identifier (`"person id"`, `"ODS code"` …).
    pub what: &'static str,
    /// The rejected text.
    pub value: String,
    /// Why it was rejected.
    pub why: &'static str,
}

/// Longest identifier accepted (FHIR ids are at most 64 characters; user ids may be e-mail
/// addresses, so allow a little more).
const MAX_ID_LEN: usize = 128;

fn check_id(what: &'static str, value: &str) -> Result<(), IdError> {
    let err = |why| IdError {
        what,
        value: value.to_string(),
        why,
    };
    if value.is_empty() {
        return Err(err("must not be empty"));
    }
    if value.chars().count() > MAX_ID_LEN {
        return Err(err("longer than 128 characters"));
    }
    if value.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(err("must not contain whitespace or control characters"));
    }
    Ok(())
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            /// Validates and wraps an identifier: non-empty, at most 128 characters, no
            /// whitespace or control characters.
            pub fn new(value: impl Into<String>) -> Result<Self, IdError> {
                let value = value.into();
                check_id($what, &value)?;
                Ok(Self(value))
            }

            /// The identifier as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

id_type!(
    /// The record store's identifier of a citizen (the FHIR Patient id in the shared care
    /// record). It is identifiable-side: never the lake's pseudonymous `person_id`.
    PersonId,
    "person id"
);
id_type!(
    /// A user account's identifier (staff, citizen, carer or system client id).
    UserId,
    "user id"
);
id_type!(
    /// A care team's identifier (a caseload belongs to a team).
    TeamId,
    "team id"
);

/// An organisation's ODS code (NHS Organisation Data Service): a GP practice (`C84001`), a
/// trust (`RX1`), a trust site (`RX1RA`), an ICB (`52R`). Upper-case letters and digits, 3
/// to 10 characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OdsCode(String);

impl OdsCode {
    /// Validates an ODS code: 3–10 characters, ASCII upper-case letters and digits only.
    pub fn new(value: impl Into<String>) -> Result<Self, IdError> {
        let value = value.into();
        let err = |why| IdError {
            what: "ODS code",
            value: value.clone(),
            why,
        };
        if !(3..=10).contains(&value.len()) {
            return Err(err("must be 3 to 10 characters"));
        }
        if !value
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
        {
            return Err(err("must be upper-case letters and digits only"));
        }
        Ok(Self(value))
    }

    /// The code as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for OdsCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Defines an enum whose variants have stable text codes (used in audit entries, reason
/// codes and scope strings), with `code()`, `from_code()` and `ALL`.
macro_rules! coded_enum {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident => $code:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $($(#[$vdoc])* $variant),+
        }

        impl $name {
            /// Every variant, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The stable text code of this variant.
            pub fn code(self) -> &'static str {
                match self {
                    $($name::$variant => $code),+
                }
            }

            /// The variant with this text code, if any (exact, case-sensitive).
            pub fn from_code(code: &str) -> Option<Self> {
                match code {
                    $($code => Some($name::$variant),)+
                    _ => None,
                }
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.code())
            }
        }
    };
}
pub(crate) use coded_enum;

coded_enum!(
    /// What kind of account a session was authenticated as. A person who is both a citizen
    /// and a carer holds two roles and chooses one per session.
    Role {
        /// A member of the public using their own record.
        Citizen => "citizen",
        /// A member of the public acting for a citizen who shared (part of) their record.
        Carer => "carer",
        /// A registered health professional (doctor, nurse, pharmacist, therapist …).
        Clinician => "clinician",
        /// A care coordinator or social care case manager holding a caseload.
        CaseManager => "case-manager",
        /// An analyst using pseudonymised or aggregate data for planning (secondary use).
        Analyst => "analyst",
        /// Manages accounts and reviews the audit; sees no clinical content.
        Administrator => "administrator",
        /// Another computer system (an OAuth2 client), governed by its SMART scopes.
        System => "system",
    }
);

/// Why the principal asks. The purpose is declared with each request and recorded in the
/// audit; a role may use only certain purposes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Purpose {
    /// Providing care to the person (the legal basis for identifiable access by staff).
    DirectCare,
    /// A citizen using their own record.
    SelfAccess,
    /// A carer using what a citizen shared with them.
    CarerAccess,
    /// Planning, commissioning, research: pseudonymised or aggregate data only.
    Secondary,
    /// Running the service: accounts, audit review.
    Administration,
    /// Emergency access without an established care relationship; the stated reason is
    /// recorded and the access is flagged for review.
    BreakGlass {
        /// The clinician's stated reason (at most [`Purpose::MAX_REASON_CHARS`] characters).
        reason: String,
    },
}

impl Purpose {
    /// Longest break-glass reason accepted: enough for a justification, too short for
    /// clinical narrative (the reason is kept in the audit, which holds no clinical content).
    pub const MAX_REASON_CHARS: usize = 200;

    /// The stable code of the purpose (without any break-glass reason).
    pub fn code(&self) -> &'static str {
        match self {
            Purpose::DirectCare => "direct-care",
            Purpose::SelfAccess => "self-access",
            Purpose::CarerAccess => "carer-access",
            Purpose::Secondary => "secondary",
            Purpose::Administration => "administration",
            Purpose::BreakGlass { .. } => "break-glass",
        }
    }

    /// The break-glass reason, if this is break-glass.
    pub fn reason(&self) -> Option<&str> {
        match self {
            Purpose::BreakGlass { reason } => Some(reason),
            _ => None,
        }
    }
}

coded_enum!(
    /// What is being accessed. The clinical kinds are FHIR R4 resource types; `Worklist`,
    /// `PseudonymisedExtract`, `Aggregate` and `Account` are trent's own.
    ResourceKind {
        /// Demographics of a person (FHIR Patient).
        Patient => "Patient",
        /// A contact: an attendance, admission, consultation (FHIR Encounter).
        Encounter => "Encounter",
        /// A period of care by one organisation or team (FHIR EpisodeOfCare).
        EpisodeOfCare => "EpisodeOfCare",
        /// A diagnosis or problem (FHIR Condition).
        Condition => "Condition",
        /// A measurement or finding (FHIR Observation).
        Observation => "Observation",
        /// A prescription (FHIR MedicationRequest).
        MedicationRequest => "MedicationRequest",
        /// A referral or order (FHIR ServiceRequest).
        ServiceRequest => "ServiceRequest",
        /// An allergy or intolerance (FHIR AllergyIntolerance).
        AllergyIntolerance => "AllergyIntolerance",
        /// A care plan (FHIR CarePlan).
        CarePlan => "CarePlan",
        /// A citizen's consent decisions: carer grants, preferences (FHIR Consent).
        Consent => "Consent",
        /// An entry of the access audit (FHIR AuditEvent).
        AuditEvent => "AuditEvent",
        /// A team's caseload worklist (identifiable: names the people on it).
        Worklist => "Worklist",
        /// A pseudonymised person-level extract for secondary use.
        PseudonymisedExtract => "PseudonymisedExtract",
        /// Small-number-suppressed aggregate statistics.
        Aggregate => "Aggregate",
        /// User accounts (staff, citizens, carers, system clients).
        Account => "Account",
    }
);

impl ResourceKind {
    /// The clinical record of a person: everything a care relationship gives access to.
    pub fn is_clinical(self) -> bool {
        use ResourceKind::*;
        matches!(
            self,
            Patient
                | Encounter
                | EpisodeOfCare
                | Condition
                | Observation
                | MedicationRequest
                | ServiceRequest
                | AllergyIntolerance
                | CarePlan
        )
    }

    /// Part of one person's record: the clinical kinds and their consent decisions.
    pub fn is_person_record(self) -> bool {
        self.is_clinical() || self == ResourceKind::Consent
    }

    /// Whether a response of this kind may hold citizen-identifiable data.
    pub fn is_identifiable(self) -> bool {
        self.is_person_record() || matches!(self, ResourceKind::AuditEvent | ResourceKind::Worklist)
    }
}

coded_enum!(
    /// What is done (the FHIR RESTful interactions, grouped as SMART v2 does: c, r, u, d, s).
    Action {
        /// Make a new resource.
        Create => "create",
        /// Read one resource by id.
        Read => "read",
        /// Change a resource.
        Update => "update",
        /// Remove a resource.
        Delete => "delete",
        /// Search for resources.
        Search => "search",
    }
);

impl Action {
    /// Create, Update or Delete.
    pub fn is_write(self) -> bool {
        matches!(self, Action::Create | Action::Update | Action::Delete)
    }
}

/// Who is asking: the authenticated account and what the decision needs to know about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The account.
    pub user: UserId,
    /// What the account is.
    pub role: Role,
    /// The organisation the user works for (staff), by ODS code.
    pub organisation: Option<OdsCode>,
    /// The care team the user works in (clinicians, case managers).
    pub team: Option<TeamId>,
    /// The person this account is (citizens).
    pub person: Option<PersonId>,
    /// `None` for a first-party session (the role's rights apply in full). `Some` for an
    /// OAuth2 access token: for a system, its `system/` scopes are its rights; for a user, a
    /// SMART app acting for them may do only what both the role and a `user/` or `patient/`
    /// scope allow.
    pub scopes: Option<Vec<Scope>>,
    /// The SMART launch patient that `patient/` scopes are bound to.
    pub launch_patient: Option<PersonId>,
}

impl Principal {
    /// A first-party principal with the given user and role and nothing else set.
    pub fn new(user: UserId, role: Role) -> Self {
        Principal {
            user,
            role,
            organisation: None,
            team: None,
            person: None,
            scopes: None,
            launch_patient: None,
        }
    }
}

coded_enum!(
    /// What established a care relationship between an organisation and a person.
    EpisodeKind {
        /// An encounter (attendance, admission, appointment).
        Encounter => "encounter",
        /// An episode of care.
        EpisodeOfCare => "episode-of-care",
        /// A referral received by the organisation.
        Referral => "referral",
    }
);

/// A period of care of a person by an organisation, as the store knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CareEpisode {
    /// Encounter, episode of care or referral.
    pub kind: EpisodeKind,
    /// The organisation providing the care.
    pub organisation: OdsCode,
    /// When it started (informational: a booked, future encounter already counts, so staff
    /// can prepare for it).
    pub start: DateTime<Utc>,
    /// When it ended (discharge, closure); `None` while open.
    pub end: Option<DateTime<Utc>>,
}

/// A citizen's decision to share part of their record with a carer's account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CarerGrant {
    /// The carer's account.
    pub carer: UserId,
    /// The resource kinds shared (only person-record kinds have effect).
    pub kinds: Vec<ResourceKind>,
    /// When the grant lapses by itself (exclusive: at this instant it is no longer valid).
    pub expires: Option<DateTime<Utc>>,
    /// When the citizen revoked it (exclusive, like `expires`).
    pub revoked: Option<DateTime<Utc>>,
}

impl CarerGrant {
    /// Whether the grant has been revoked at `now`.
    pub fn is_revoked(&self, now: DateTime<Utc>) -> bool {
        self.revoked.is_some_and(|r| r <= now)
    }

    /// Whether the grant has expired at `now`.
    pub fn is_expired(&self, now: DateTime<Utc>) -> bool {
        self.expires.is_some_and(|e| e <= now)
    }

    /// Neither revoked nor expired at `now`.
    pub fn is_active(&self, now: DateTime<Utc>) -> bool {
        !self.is_revoked(now) && !self.is_expired(now)
    }
}

/// The store could not answer a relationship question; the decision then denies (fails
/// closed) with [`crate::ReasonCode::RelationshipLookupFailed`].
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("relationship lookup failed: {0}")]
pub struct LookupError(pub String);

/// The facts about a person that access decisions need, answered by the record store.
///
/// Each method is a narrow question so that a store can answer it with one indexed query.
/// An unknown person is not an error: it has no practice, no episodes, no grants.
pub trait Relationships {
    /// The GP practice the person is registered with.
    fn registered_practice(&self, person: &PersonId) -> Result<Option<OdsCode>, LookupError>;
    /// The person's encounters, episodes of care and referrals (open and closed; the
    /// decision applies the grace period).
    fn care_episodes(&self, person: &PersonId) -> Result<Vec<CareEpisode>, LookupError>;
    /// The teams whose caseload the person is on now.
    fn caseload_teams(&self, person: &PersonId) -> Result<Vec<TeamId>, LookupError>;
    /// Every carer grant the person has made, including revoked and expired ones (so that a
    /// denial can say why).
    fn carer_grants(&self, person: &PersonId) -> Result<Vec<CarerGrant>, LookupError>;
    /// Whether the person has registered a national data opt-out (type 2 style: no use of
    /// their confidential information for research and planning).
    fn national_opt_out(&self, person: &PersonId) -> Result<bool, LookupError>;
}

/// Everything a [`Relationships`] store knows about one person, for [`InMemoryRelationships`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PersonFacts {
    /// Registered GP practice.
    pub registered_practice: Option<OdsCode>,
    /// Encounters, episodes of care and referrals.
    pub episodes: Vec<CareEpisode>,
    /// Teams holding the person on their caseload.
    pub caseload_teams: Vec<TeamId>,
    /// Carer grants made by the person.
    pub carer_grants: Vec<CarerGrant>,
    /// National data opt-out registered.
    pub national_opt_out: bool,
}

/// A [`Relationships`] store held in memory: the reference implementation for tests and
/// for small deployments that load relationships at start-up.
#[derive(Debug, Clone, Default)]
pub struct InMemoryRelationships {
    people: HashMap<PersonId, PersonFacts>,
}

impl InMemoryRelationships {
    /// An empty store (nobody has any relationship).
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets (replaces) the facts about a person.
    pub fn insert(&mut self, person: PersonId, facts: PersonFacts) {
        self.people.insert(person, facts);
    }

    /// The facts about a person, for editing (created empty if absent).
    pub fn facts_mut(&mut self, person: &PersonId) -> &mut PersonFacts {
        self.people.entry(person.clone()).or_default()
    }

    fn get(&self, person: &PersonId) -> Option<&PersonFacts> {
        self.people.get(person)
    }
}

impl Relationships for InMemoryRelationships {
    fn registered_practice(&self, person: &PersonId) -> Result<Option<OdsCode>, LookupError> {
        Ok(self.get(person).and_then(|f| f.registered_practice.clone()))
    }

    fn care_episodes(&self, person: &PersonId) -> Result<Vec<CareEpisode>, LookupError> {
        Ok(self
            .get(person)
            .map(|f| f.episodes.clone())
            .unwrap_or_default())
    }

    fn caseload_teams(&self, person: &PersonId) -> Result<Vec<TeamId>, LookupError> {
        Ok(self
            .get(person)
            .map(|f| f.caseload_teams.clone())
            .unwrap_or_default())
    }

    fn carer_grants(&self, person: &PersonId) -> Result<Vec<CarerGrant>, LookupError> {
        Ok(self
            .get(person)
            .map(|f| f.carer_grants.clone())
            .unwrap_or_default())
    }

    fn national_opt_out(&self, person: &PersonId) -> Result<bool, LookupError> {
        Ok(self.get(person).is_some_and(|f| f.national_opt_out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_validated() {
        assert!(PersonId::new("p-1").is_ok());
        let e = PersonId::new("").unwrap_err();
        assert_eq!(e.what, "person id");
        assert!(e.to_string().contains("must not be empty"));
        assert!(UserId::new("a b").is_err());
        assert!(UserId::new("a\nb").is_err());
        assert!(TeamId::new("x".repeat(129)).is_err());
        assert!(OdsCode::new("C84001").is_ok());
        assert!(OdsCode::new("52R").is_ok());
        assert!(OdsCode::new("c84001").is_err());
        assert!(OdsCode::new("RX").is_err());
        assert!(OdsCode::new("RX1-RA").is_err());
    }

    #[test]
    fn codes_round_trip() {
        for r in Role::ALL {
            assert_eq!(Role::from_code(r.code()), Some(*r));
        }
        for k in ResourceKind::ALL {
            assert_eq!(ResourceKind::from_code(k.code()), Some(*k));
        }
        for a in Action::ALL {
            assert_eq!(Action::from_code(a.code()), Some(*a));
        }
        assert_eq!(Role::from_code("Citizen"), None);
    }

    #[test]
    fn grant_validity_is_exclusive_at_the_instant() {
        let t = DateTime::parse_from_rfc3339("2025-01-01T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let g = CarerGrant {
            carer: UserId::new("c").unwrap(),
            kinds: vec![],
            expires: Some(t),
            revoked: None,
        };
        assert!(g.is_active(t - chrono::Duration::seconds(1)));
        assert!(!g.is_active(t));
    }
}
