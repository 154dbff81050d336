//! The access decision: may this principal, for this purpose, do this action on this kind
//! of resource about this person, now?
//!
//! Every request to the shared care record goes through [`decide`] (or
//! [`Policy::decide`]). The function is pure apart from the questions it asks the store
//! through [`Relationships`]; it denies by default, and every denial carries a
//! [`ReasonCode`]. The rules and their order are in `docs/access.md`; in short:
//!
//! 1. global rules: the audit is append-only; person records are never deleted;
//! 2. the purpose must be one the role may use;
//! 3. the role's rule (care relationship, self access, carer grant, secondary use, …);
//! 4. a SMART app acting for a user may do only what one of its `user/` or `patient/`
//!    scopes also allows.
//!
//! Within a role's rule the checks run in a fixed order — kind, action, subject, then the
//! store lookups — so the reason code for any request is predictable, and the access matrix
//! test pins every cell.

use chrono::{DateTime, Duration, Utc};

use crate::model::{
    Action, CarerGrant, PersonId, Principal, Purpose, Relationships, ResourceKind, Role, coded_enum,
};
use crate::scopes::{Scope, ScopeContext};

coded_enum!(
    /// Why a request was allowed or denied. The codes are stable (they go into the audit).
    ReasonCode {
        /// Allowed: the person is registered at the principal's practice.
        RegisteredPractice => "registered-practice",
        /// Allowed: an open (or recently closed) encounter, episode or referral with the
        /// principal's organisation.
        CareEpisode => "care-episode",
        /// Allowed: the person is on the principal's team's caseload.
        Caseload => "caseload",
        /// Allowed by break-glass; flagged for review.
        BreakGlass => "break-glass",
        /// Allowed: the principal's team worklist.
        TeamWorklist => "team-worklist",
        /// Allowed: a citizen's own record.
        SelfAccess => "self-access",
        /// Allowed: a carer grant from the citizen covers this kind.
        CarerGrant => "carer-grant",
        /// Allowed: a pseudonymised extract for secondary use.
        PseudonymisedSecondaryUse => "pseudonymised-secondary-use",
        /// Allowed: aggregate statistics for secondary use.
        AggregateSecondaryUse => "aggregate-secondary-use",
        /// Allowed: account administration.
        AccountAdministration => "account-administration",
        /// Allowed: audit review by an administrator.
        AuditReview => "audit-review",
        /// Allowed: a `system/` scope of the client permits it.
        SystemScope => "system-scope",
        /// Denied: audit entries are written only by the access module, never through the API.
        AuditAppendOnly => "audit-append-only",
        /// Denied: person records are corrected or marked entered-in-error, never deleted.
        RecordsAreNotDeleted => "records-are-not-deleted",
        /// Denied: the role may not use this purpose.
        PurposeNotPermittedForRole => "purpose-not-permitted-for-role",
        /// Denied: the role has no access to this kind of resource.
        NotPermittedForRole => "not-permitted-for-role",
        /// Denied: the role may not do this action on this kind.
        ActionNotPermittedForRole => "action-not-permitted-for-role",
        /// Denied: the purpose does not fit this kind of resource (systems).
        PurposeNotApplicable => "purpose-not-applicable",
        /// Denied: person-level access needs a subject person (search by patient).
        SubjectRequired => "subject-required",
        /// Denied: aggregates are not about one person.
        SubjectNotAllowed => "subject-not-allowed",
        /// Denied: no registration, open episode or caseload links the principal to the person.
        NoCareRelationship => "no-care-relationship",
        /// Denied: a worklist belongs to a team and the principal has none.
        NoTeam => "no-team",
        /// Denied: break-glass needs a stated reason (non-blank, at most 200 characters, one line).
        BreakGlassReasonInvalid => "break-glass-reason-invalid",
        /// Denied: break-glass gives read access only.
        BreakGlassReadOnly => "break-glass-read-only",
        /// Denied: break-glass applies to a person's record only.
        BreakGlassNotApplicable => "break-glass-not-applicable",
        /// Denied: the account lacks a fact the rule needs (a citizen account with no person).
        PrincipalIncomplete => "principal-incomplete",
        /// Denied: a citizen asked for someone else's record.
        NotOwnRecord => "not-own-record",
        /// Denied: the citizen has made no grant to this carer.
        NoCarerGrant => "no-carer-grant",
        /// Denied: the carer's grant does not include this kind of resource.
        KindNotGranted => "kind-not-granted",
        /// Denied: the citizen revoked the grant.
        CarerGrantRevoked => "carer-grant-revoked",
        /// Denied: the grant expired.
        CarerGrantExpired => "carer-grant-expired",
        /// Denied: secondary use never sees identifiable data.
        IdentifiableDataNotForSecondaryUse => "identifiable-data-not-for-secondary-use",
        /// Denied: the person registered a national data opt-out.
        NationalDataOptOut => "national-data-opt-out",
        /// Denied: administrators see no clinical content.
        NoClinicalContentForAdministrators => "no-clinical-content-for-administrators",
        /// Denied: a system principal carries no scopes.
        NoScopes => "no-scopes",
        /// Denied: no scope of the token permits this.
        ScopeNotGranted => "scope-not-granted",
        /// Denied: the store could not answer (fail closed).
        RelationshipLookupFailed => "relationship-lookup-failed",
    }
);

impl ReasonCode {
    /// Whether this code is an allow reason.
    pub fn is_allow(self) -> bool {
        use ReasonCode::*;
        matches!(
            self,
            RegisteredPractice
                | CareEpisode
                | Caseload
                | BreakGlass
                | TeamWorklist
                | SelfAccess
                | CarerGrant
                | PseudonymisedSecondaryUse
                | AggregateSecondaryUse
                | AccountAdministration
                | AuditReview
                | SystemScope
        )
    }
}

coded_enum!(
    /// Obligations and markers attached to an allowed decision, which the caller must honour.
    Flag {
        /// Break-glass access: queue for review by the Caldicott guardian's team.
        BreakGlassReview => "break-glass-review",
        /// The extract must leave out everyone with a national data opt-out.
        ExcludeOptedOut => "exclude-opted-out",
        /// Small numbers must be suppressed in the aggregate.
        SuppressSmallNumbers => "suppress-small-numbers",
    }
);

/// The outcome of an access decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// Whether the request may proceed.
    pub allow: bool,
    /// Why (an allow reason when `allow`, a deny reason otherwise).
    pub reason: ReasonCode,
    /// A sentence for the user or the reviewer; holds no person identifiers.
    pub explanation: String,
    /// Obligations for the caller (review, opt-out exclusion, suppression).
    pub flags: Vec<Flag>,
    /// Whether the response may hold citizen-identifiable data (false for every denial).
    pub identifiable: bool,
}

/// A request to decide on: who, what, about whom, why.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// Who asks.
    pub principal: &'a Principal,
    /// What they want to do.
    pub action: Action,
    /// To what kind of resource.
    pub kind: ResourceKind,
    /// About whom (`None` for searches across people, extracts, accounts, worklists).
    pub subject: Option<&'a PersonId>,
    /// Why.
    pub purpose: &'a Purpose,
}

/// The tunable parts of the rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// How long after an encounter, episode or referral ends the organisation keeps its
    /// care relationship (results arrive, discharge letters are written, follow-up is
    /// arranged). Default 30 days; an episode ended exactly this long ago still counts.
    pub discharge_grace: Duration,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            discharge_grace: Duration::days(30),
        }
    }
}

type Outcome = Result<(ReasonCode, String, Vec<Flag>), (ReasonCode, String)>;

fn allow(reason: ReasonCode, explanation: impl Into<String>) -> Outcome {
    Ok((reason, explanation.into(), Vec::new()))
}

fn allow_flagged(reason: ReasonCode, explanation: impl Into<String>, flags: Vec<Flag>) -> Outcome {
    Ok((reason, explanation.into(), flags))
}

fn deny(reason: ReasonCode, explanation: impl Into<String>) -> Outcome {
    Err((reason, explanation.into()))
}

/// The purposes each role may declare.
pub fn purpose_permitted(role: Role, purpose: &Purpose) -> bool {
    matches!(
        (role, purpose),
        (Role::Citizen, Purpose::SelfAccess)
            | (Role::Carer, Purpose::CarerAccess)
            | (
                Role::Clinician | Role::CaseManager,
                Purpose::DirectCare | Purpose::BreakGlass { .. }
            )
            | (Role::Analyst, Purpose::Secondary)
            | (Role::Administrator, Purpose::Administration)
            | (
                Role::System,
                Purpose::DirectCare | Purpose::Secondary | Purpose::Administration
            )
    )
}

/// Which writes (create, update) staff may make on a person's record, given a care
/// relationship. Reads and searches of every person-record kind are always included.
pub fn staff_may(role: Role, kind: ResourceKind, action: Action) -> bool {
    use ResourceKind::*;
    if !kind.is_person_record() {
        return false;
    }
    match action {
        Action::Read | Action::Search => true,
        Action::Delete => false,
        Action::Create | Action::Update => match role {
            // Clinicians write every clinical kind; a new Patient comes from registration
            // (a system feed), and consent is recorded by the citizen.
            Role::Clinician => kind.is_clinical() && !(kind == Patient && action == Action::Create),
            // Case managers coordinate care: contacts, episodes, referrals and care plans;
            // diagnoses, prescriptions, allergies and observations are clinical assertions.
            Role::CaseManager => {
                matches!(kind, Encounter | EpisodeOfCare | ServiceRequest | CarePlan)
            }
            _ => false,
        },
    }
}

/// Why a break-glass reason is unacceptable, if it is.
fn break_glass_reason_problem(reason: &str) -> Option<&'static str> {
    if reason.trim().is_empty() {
        Some("break-glass needs a stated reason")
    } else if reason.chars().count() > Purpose::MAX_REASON_CHARS {
        Some("the break-glass reason is longer than 200 characters")
    } else if reason.chars().any(char::is_control) {
        Some("the break-glass reason must be one line without control characters")
    } else {
        None
    }
}

impl Policy {
    /// Decides on a request. See the module docs and `docs/access.md` for the rules.
    pub fn decide(
        &self,
        req: &Request<'_>,
        now: DateTime<Utc>,
        rels: &dyn Relationships,
    ) -> Decision {
        let outcome = self
            .evaluate(req, now, rels)
            .and_then(|ok| scope_check(req, ok));
        match outcome {
            Ok((reason, explanation, flags)) => Decision {
                allow: true,
                reason,
                explanation,
                flags,
                identifiable: req.kind.is_identifiable(),
            },
            Err((reason, explanation)) => Decision {
                allow: false,
                reason,
                explanation,
                flags: Vec::new(),
                identifiable: false,
            },
        }
    }

    fn evaluate(&self, req: &Request<'_>, now: DateTime<Utc>, rels: &dyn Relationships) -> Outcome {
        let (kind, action, role) = (req.kind, req.action, req.principal.role);
        if kind == ResourceKind::AuditEvent && action.is_write() {
            return deny(
                ReasonCode::AuditAppendOnly,
                "the audit is written only by the access module and never changed",
            );
        }
        if kind.is_person_record() && action == Action::Delete {
            return deny(
                ReasonCode::RecordsAreNotDeleted,
                "records are corrected or marked entered-in-error, never deleted",
            );
        }
        if !purpose_permitted(role, req.purpose) {
            return deny(
                ReasonCode::PurposeNotPermittedForRole,
                format!("a {role} may not act for purpose {}", req.purpose.code()),
            );
        }
        match role {
            Role::Clinician | Role::CaseManager => self.staff(req, now, rels),
            Role::Citizen => citizen(req),
            Role::Carer => carer(req, now, rels),
            Role::Analyst => secondary(req, rels),
            Role::Administrator => administrator(req),
            Role::System => system(req, rels),
        }
    }

    fn staff(&self, req: &Request<'_>, now: DateTime<Utc>, rels: &dyn Relationships) -> Outcome {
        let (kind, action, role, p) = (req.kind, req.action, req.principal.role, req.principal);
        if kind == ResourceKind::Worklist {
            if matches!(req.purpose, Purpose::BreakGlass { .. }) {
                return deny(
                    ReasonCode::BreakGlassNotApplicable,
                    "break-glass opens one person's record, not a worklist",
                );
            }
            if !matches!(action, Action::Read | Action::Search | Action::Update) {
                return deny(
                    ReasonCode::ActionNotPermittedForRole,
                    format!("worklists are generated; a {role} may read, search and update them"),
                );
            }
            return match &p.team {
                Some(team) => allow(ReasonCode::TeamWorklist, format!("worklist of team {team}")),
                None => deny(
                    ReasonCode::NoTeam,
                    "a worklist belongs to a team and this account has none",
                ),
            };
        }
        if !kind.is_person_record() {
            return deny(
                ReasonCode::NotPermittedForRole,
                format!("a {role} has no access to {kind}"),
            );
        }
        if let Purpose::BreakGlass { reason } = req.purpose {
            if let Some(problem) = break_glass_reason_problem(reason) {
                return deny(ReasonCode::BreakGlassReasonInvalid, problem);
            }
            if action.is_write() {
                return deny(
                    ReasonCode::BreakGlassReadOnly,
                    "break-glass gives read access only; record care once an encounter is open",
                );
            }
            if req.subject.is_none() {
                return deny(
                    ReasonCode::SubjectRequired,
                    "break-glass is for one named person",
                );
            }
            return allow_flagged(
                ReasonCode::BreakGlass,
                "break-glass access; recorded and queued for review",
                vec![Flag::BreakGlassReview],
            );
        }
        if !staff_may(role, kind, action) {
            return deny(
                ReasonCode::ActionNotPermittedForRole,
                format!("a {role} may not {action} {kind}"),
            );
        }
        let Some(subject) = req.subject else {
            return deny(
                ReasonCode::SubjectRequired,
                "access to a person's record must name the person (search by patient)",
            );
        };
        self.care_relationship(p, subject, now, rels)
    }

    fn care_relationship(
        &self,
        p: &Principal,
        subject: &PersonId,
        now: DateTime<Utc>,
        rels: &dyn Relationships,
    ) -> Outcome {
        let failed =
            |e: crate::model::LookupError| (ReasonCode::RelationshipLookupFailed, e.to_string());
        if let Some(org) = &p.organisation {
            let practice = rels.registered_practice(subject).map_err(failed)?;
            if practice.as_ref() == Some(org) {
                return allow(
                    ReasonCode::RegisteredPractice,
                    format!("registered at {org}"),
                );
            }
            let episodes = rels.care_episodes(subject).map_err(failed)?;
            if let Some(e) = episodes.iter().find(|e| {
                &e.organisation == org && e.end.is_none_or(|end| now <= end + self.discharge_grace)
            }) {
                return allow(
                    ReasonCode::CareEpisode,
                    format!(
                        "{} with {org} open or closed within the grace period",
                        e.kind
                    ),
                );
            }
        }
        if let Some(team) = &p.team {
            let teams = rels.caseload_teams(subject).map_err(failed)?;
            if teams.contains(team) {
                return allow(
                    ReasonCode::Caseload,
                    format!("on the caseload of team {team}"),
                );
            }
        }
        deny(
            ReasonCode::NoCareRelationship,
            "no registration, open episode or caseload links this account to the person; break-glass is available with a stated reason",
        )
    }
}

fn citizen(req: &Request<'_>) -> Outcome {
    let (kind, action) = (req.kind, req.action);
    let Some(me) = &req.principal.person else {
        return deny(
            ReasonCode::PrincipalIncomplete,
            "this citizen account is not linked to a person",
        );
    };
    let action_ok = match kind {
        k if k.is_clinical() => matches!(action, Action::Read | Action::Search),
        ResourceKind::Consent => matches!(
            action,
            Action::Create | Action::Read | Action::Update | Action::Search
        ),
        ResourceKind::AuditEvent => matches!(action, Action::Read | Action::Search),
        _ => {
            return deny(
                ReasonCode::NotPermittedForRole,
                format!("a citizen has no access to {kind}"),
            );
        }
    };
    if !action_ok {
        return deny(
            ReasonCode::ActionNotPermittedForRole,
            format!("a citizen may not {action} {kind}"),
        );
    }
    match req.subject {
        None => deny(
            ReasonCode::SubjectRequired,
            "a citizen's access is to their own record, by person",
        ),
        Some(s) if s == me => allow(ReasonCode::SelfAccess, "the citizen's own record"),
        Some(_) => deny(
            ReasonCode::NotOwnRecord,
            "a citizen may see only their own record",
        ),
    }
}

fn carer(req: &Request<'_>, now: DateTime<Utc>, rels: &dyn Relationships) -> Outcome {
    let (kind, action) = (req.kind, req.action);
    if !kind.is_person_record() {
        return deny(
            ReasonCode::NotPermittedForRole,
            format!("a carer has no access to {kind}"),
        );
    }
    if !matches!(action, Action::Read | Action::Search) {
        return deny(
            ReasonCode::ActionNotPermittedForRole,
            format!("a carer may only read what was shared, not {action}"),
        );
    }
    let Some(subject) = req.subject else {
        return deny(
            ReasonCode::SubjectRequired,
            "carer access is to one named person",
        );
    };
    let grants = rels
        .carer_grants(subject)
        .map_err(|e| (ReasonCode::RelationshipLookupFailed, e.to_string()))?;
    let mine: Vec<&CarerGrant> = grants
        .iter()
        .filter(|g| g.carer == req.principal.user)
        .collect();
    if mine
        .iter()
        .any(|g| g.is_active(now) && g.kinds.contains(&kind))
    {
        return allow(
            ReasonCode::CarerGrant,
            format!("{kind} shared with this carer"),
        );
    }
    if mine.is_empty() {
        deny(
            ReasonCode::NoCarerGrant,
            "the person has not shared their record with this carer",
        )
    } else if mine.iter().any(|g| g.is_active(now)) {
        deny(
            ReasonCode::KindNotGranted,
            format!("{kind} is not among what was shared"),
        )
    } else if mine.iter().any(|g| g.is_revoked(now)) {
        deny(
            ReasonCode::CarerGrantRevoked,
            "the person revoked the grant",
        )
    } else {
        deny(ReasonCode::CarerGrantExpired, "the grant has expired")
    }
}

/// Secondary use (analysts, and systems acting for secondary use after their scope check):
/// pseudonymised extracts and aggregates only, and never anyone with a national data
/// opt-out.
fn secondary(req: &Request<'_>, rels: &dyn Relationships) -> Outcome {
    let (kind, action) = (req.kind, req.action);
    match kind {
        ResourceKind::PseudonymisedExtract | ResourceKind::Aggregate => {}
        k if k.is_identifiable() => {
            return deny(
                ReasonCode::IdentifiableDataNotForSecondaryUse,
                format!(
                    "{kind} is identifiable; secondary use gets pseudonymised extracts and aggregates"
                ),
            );
        }
        _ => {
            return deny(
                ReasonCode::NotPermittedForRole,
                format!("secondary use has no access to {kind}"),
            );
        }
    }
    if !matches!(action, Action::Read | Action::Search) {
        return deny(
            ReasonCode::ActionNotPermittedForRole,
            format!("secondary use may read and search {kind}, not {action}"),
        );
    }
    if kind == ResourceKind::Aggregate {
        return match req.subject {
            Some(_) => deny(
                ReasonCode::SubjectNotAllowed,
                "an aggregate is not about one person",
            ),
            None => allow_flagged(
                ReasonCode::AggregateSecondaryUse,
                "aggregate statistics, small numbers suppressed",
                vec![Flag::SuppressSmallNumbers],
            ),
        };
    }
    match req.subject {
        None => allow_flagged(
            ReasonCode::PseudonymisedSecondaryUse,
            "pseudonymised extract, people with a national data opt-out left out",
            vec![Flag::ExcludeOptedOut],
        ),
        Some(subject) => {
            let opted_out = rels
                .national_opt_out(subject)
                .map_err(|e| (ReasonCode::RelationshipLookupFailed, e.to_string()))?;
            if opted_out {
                deny(
                    ReasonCode::NationalDataOptOut,
                    "the person opted out of the use of their data for research and planning",
                )
            } else {
                allow(
                    ReasonCode::PseudonymisedSecondaryUse,
                    "pseudonymised data of one person",
                )
            }
        }
    }
}

fn administrator(req: &Request<'_>) -> Outcome {
    let (kind, action) = (req.kind, req.action);
    match kind {
        ResourceKind::Account if action == Action::Delete => deny(
            ReasonCode::ActionNotPermittedForRole,
            "accounts are disabled, never deleted, so the audit stays attributable",
        ),
        ResourceKind::Account => allow(ReasonCode::AccountAdministration, "account administration"),
        // Writes to the audit were refused by the global rule.
        ResourceKind::AuditEvent => allow(ReasonCode::AuditReview, "audit review"),
        k if k.is_person_record() || k == ResourceKind::Worklist => deny(
            ReasonCode::NoClinicalContentForAdministrators,
            "administrators see no clinical content",
        ),
        _ => deny(
            ReasonCode::NotPermittedForRole,
            format!("an administrator has no access to {kind}"),
        ),
    }
}

fn system(req: &Request<'_>, rels: &dyn Relationships) -> Outcome {
    let (kind, action) = (req.kind, req.action);
    let Some(scopes) = &req.principal.scopes else {
        return deny(
            ReasonCode::NoScopes,
            "a system acts only through the scopes of its token",
        );
    };
    let fits = match req.purpose {
        Purpose::DirectCare => kind.is_person_record() || kind == ResourceKind::Worklist,
        Purpose::Secondary => {
            matches!(
                kind,
                ResourceKind::PseudonymisedExtract | ResourceKind::Aggregate
            )
        }
        Purpose::Administration => matches!(kind, ResourceKind::Account | ResourceKind::AuditEvent),
        _ => false,
    };
    if !fits {
        return deny(
            ReasonCode::PurposeNotApplicable,
            format!("purpose {} does not cover {kind}", req.purpose.code()),
        );
    }
    if kind == ResourceKind::Account && action == Action::Delete {
        return deny(
            ReasonCode::ActionNotPermittedForRole,
            "accounts are disabled, never deleted, so the audit stays attributable",
        );
    }
    if *req.purpose == Purpose::Secondary && !matches!(action, Action::Read | Action::Search) {
        return deny(
            ReasonCode::ActionNotPermittedForRole,
            format!("secondary use may read and search {kind}, not {action}"),
        );
    }
    let granted = scopes.iter().any(|s| match s {
        Scope::Resource(r) => r.context == ScopeContext::System && r.permits(kind, action),
        _ => false,
    });
    if !granted {
        return deny(
            ReasonCode::ScopeNotGranted,
            format!("no system/ scope of this client permits {action} on {kind}"),
        );
    }
    if *req.purpose == Purpose::Secondary {
        return secondary(req, rels);
    }
    allow(
        ReasonCode::SystemScope,
        format!("system scope permits {action} on {kind}"),
    )
}

/// A SMART app acting for a user: the role allowed it; a `user/` scope, or a `patient/`
/// scope bound to this subject as the launch patient, must allow it too.
fn scope_check(req: &Request<'_>, ok: (ReasonCode, String, Vec<Flag>)) -> Outcome {
    let p = req.principal;
    let Some(scopes) = &p.scopes else {
        return Ok(ok);
    };
    if p.role == Role::System {
        return Ok(ok);
    }
    let granted = scopes.iter().any(|s| match s {
        Scope::Resource(r) if r.permits(req.kind, req.action) => match r.context {
            ScopeContext::User => true,
            ScopeContext::Patient => {
                req.subject.is_some() && req.subject == p.launch_patient.as_ref()
            }
            ScopeContext::System => false,
        },
        _ => false,
    });
    if granted {
        Ok(ok)
    } else {
        deny(
            ReasonCode::ScopeNotGranted,
            format!(
                "the app's scopes do not permit {} on {} for this person",
                req.action, req.kind
            ),
        )
    }
}

/// Decides with the default [`Policy`] (30 days' grace after discharge).
pub fn decide(
    principal: &Principal,
    action: Action,
    kind: ResourceKind,
    subject: Option<&PersonId>,
    purpose: &Purpose,
    now: DateTime<Utc>,
    rels: &dyn Relationships,
) -> Decision {
    Policy::default().decide(
        &Request {
            principal,
            action,
            kind,
            subject,
            purpose,
        },
        now,
        rels,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{
        CareEpisode, EpisodeKind, InMemoryRelationships, LookupError, OdsCode, TeamId, UserId,
    };
    use crate::scopes::parse_scopes;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn clinician() -> Principal {
        let mut p = Principal::new(UserId::new("dr-a").unwrap(), Role::Clinician);
        p.organisation = Some(OdsCode::new("RX1").unwrap());
        p
    }

    #[test]
    fn grace_period_boundary_is_inclusive() {
        let now = t("2025-06-30T12:00:00Z");
        let person = PersonId::new("p1").unwrap();
        let mut rels = InMemoryRelationships::new();
        rels.facts_mut(&person).episodes.push(CareEpisode {
            kind: EpisodeKind::Encounter,
            organisation: OdsCode::new("RX1").unwrap(),
            start: t("2025-05-01T00:00:00Z"),
            end: Some(now - Duration::days(30)),
        });
        let p = clinician();
        let d = decide(
            &p,
            Action::Read,
            ResourceKind::Condition,
            Some(&person),
            &Purpose::DirectCare,
            now,
            &rels,
        );
        assert_eq!(d.reason, ReasonCode::CareEpisode);
        let later = now + Duration::seconds(1);
        let d = decide(
            &p,
            Action::Read,
            ResourceKind::Condition,
            Some(&person),
            &Purpose::DirectCare,
            later,
            &rels,
        );
        assert_eq!(d.reason, ReasonCode::NoCareRelationship);
        let policy = Policy {
            discharge_grace: Duration::days(90),
        };
        let req = Request {
            principal: &p,
            action: Action::Read,
            kind: ResourceKind::Condition,
            subject: Some(&person),
            purpose: &Purpose::DirectCare,
        };
        assert!(policy.decide(&req, later, &rels).allow);
    }

    struct Failing;
    impl Relationships for Failing {
        fn registered_practice(&self, _: &PersonId) -> Result<Option<OdsCode>, LookupError> {
            Err(LookupError("database unavailable".into()))
        }
        fn care_episodes(&self, _: &PersonId) -> Result<Vec<CareEpisode>, LookupError> {
            Err(LookupError("database unavailable".into()))
        }
        fn caseload_teams(&self, _: &PersonId) -> Result<Vec<TeamId>, LookupError> {
            Err(LookupError("database unavailable".into()))
        }
        fn carer_grants(&self, _: &PersonId) -> Result<Vec<CarerGrant>, LookupError> {
            Err(LookupError("database unavailable".into()))
        }
        fn national_opt_out(&self, _: &PersonId) -> Result<bool, LookupError> {
            Err(LookupError("database unavailable".into()))
        }
    }

    #[test]
    fn store_failure_fails_closed() {
        let now = t("2025-06-30T12:00:00Z");
        let person = PersonId::new("p1").unwrap();
        let d = decide(
            &clinician(),
            Action::Read,
            ResourceKind::Condition,
            Some(&person),
            &Purpose::DirectCare,
            now,
            &Failing,
        );
        assert!(!d.allow);
        assert_eq!(d.reason, ReasonCode::RelationshipLookupFailed);
        assert!(d.explanation.contains("database unavailable"));
        let mut analyst = Principal::new(UserId::new("an").unwrap(), Role::Analyst);
        analyst.organisation = None;
        let d = decide(
            &analyst,
            Action::Read,
            ResourceKind::PseudonymisedExtract,
            Some(&person),
            &Purpose::Secondary,
            now,
            &Failing,
        );
        assert_eq!(d.reason, ReasonCode::RelationshipLookupFailed);
    }

    #[test]
    fn break_glass_reason_must_be_stated_and_short() {
        let now = t("2025-06-30T12:00:00Z");
        let person = PersonId::new("p1").unwrap();
        let rels = InMemoryRelationships::new();
        let p = clinician();
        for (reason, ok) in [
            ("", false),
            ("   ", false),
            ("unconscious in ED, no other history available", true),
            (&"x".repeat(200), true),
            (&"x".repeat(201), false),
            ("two\nlines", false),
        ] {
            let purpose = Purpose::BreakGlass {
                reason: reason.to_string(),
            };
            let d = decide(
                &p,
                Action::Read,
                ResourceKind::MedicationRequest,
                Some(&person),
                &purpose,
                now,
                &rels,
            );
            assert_eq!(d.allow, ok, "{reason:?}");
            if ok {
                assert_eq!(d.flags, vec![Flag::BreakGlassReview]);
                assert!(d.identifiable);
            } else {
                assert_eq!(d.reason, ReasonCode::BreakGlassReasonInvalid);
            }
        }
    }

    #[test]
    fn smart_app_scopes_narrow_a_users_rights() {
        let now = t("2025-06-30T12:00:00Z");
        let me = PersonId::new("me").unwrap();
        let other = PersonId::new("other").unwrap();
        let rels = InMemoryRelationships::new();
        let mut citizen = Principal::new(UserId::new("u1").unwrap(), Role::Citizen);
        citizen.person = Some(me.clone());
        citizen.scopes = Some(parse_scopes("launch/patient patient/Observation.rs").unwrap());
        citizen.launch_patient = Some(me.clone());
        let go = |p: &Principal, kind, subject| {
            decide(
                p,
                Action::Read,
                kind,
                Some(subject),
                &Purpose::SelfAccess,
                now,
                &rels,
            )
        };
        assert_eq!(
            go(&citizen, ResourceKind::Observation, &me).reason,
            ReasonCode::SelfAccess
        );
        assert_eq!(
            go(&citizen, ResourceKind::Condition, &me).reason,
            ReasonCode::ScopeNotGranted
        );
        // The role rule is checked first: someone else's record is not the citizen's.
        assert_eq!(
            go(&citizen, ResourceKind::Observation, &other).reason,
            ReasonCode::NotOwnRecord
        );
        // A patient/ scope bound to another launch patient does not apply.
        citizen.launch_patient = Some(other.clone());
        assert_eq!(
            go(&citizen, ResourceKind::Observation, &me).reason,
            ReasonCode::ScopeNotGranted
        );
        // A system/ scope in a user's token is ignored.
        citizen.scopes = Some(parse_scopes("system/*.*").unwrap());
        assert_eq!(
            go(&citizen, ResourceKind::Observation, &me).reason,
            ReasonCode::ScopeNotGranted
        );
        citizen.scopes = Some(parse_scopes("user/*.read").unwrap());
        assert_eq!(
            go(&citizen, ResourceKind::Observation, &me).reason,
            ReasonCode::SelfAccess
        );
    }
}
