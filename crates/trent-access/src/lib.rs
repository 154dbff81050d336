//! Who may see what in trent's shared care record, who is asking, and what happened.
//!
//! Citizen-identifiable data is available only to those providing care; anonymised data
//! more widely. Every path of the record's API goes through this crate, so it is kept pure
//! and storage-agnostic — no database, no HTTP, no async — and tested exhaustively:
//!
//! - [`model`]: principals, roles, purposes, resource kinds, actions, and the
//!   [`Relationships`] trait through which the record store answers questions about a person;
//! - [`decide`](mod@decide): the access decision, default deny, a reason code on every answer;
//! - [`scopes`]: SMART on FHIR scopes (v1 and v2 syntax), parsed strictly;
//! - [`auth`]: Argon2id passwords and policy, session tokens, OAuth2 client credentials;
//! - [`throttle`]: login back-off per account and per source address, over an injected clock;
//! - [`audit`]: the hash-chained, append-only audit log and its independent verification.
//!
//! The rules, the audit's canonical form and the threat notes are in `docs/access.md`.

pub mod audit;
pub mod auth;
pub mod decide;
pub mod model;
pub mod scopes;
pub mod throttle;

pub use decide::{Decision, Flag, Policy, ReasonCode, Request, decide};
pub use model::{
    Action, CareEpisode, CarerGrant, EpisodeKind, IdError, InMemoryRelationships, LookupError,
    OdsCode, PersonFacts, PersonId, Principal, Purpose, Relationships, ResourceKind, Role, TeamId,
    UserId,
};
pub use scopes::{Scope, ScopeError, parse_scope, parse_scopes};
