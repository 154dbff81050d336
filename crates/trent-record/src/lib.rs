//! trent's shared care record: the identifiable, linked record of each person as a FHIR R4
//! store and REST API, where "citizen-identifiable data is available only to those
//! providing care".
//!
//! Why a service of its own: the lake holds pseudonymised data for analysis; direct care
//! needs names, NHS numbers and the whole record of one person, fast, to the people caring
//! for them and to nobody else. This crate keeps that record in an OLTP database (SQLite
//! by default, PostgreSQL for multi-user deployments), serves it as FHIR R4 JSON in the
//! shapes `trent-fhir` exports, and sends every request through `trent-access`'s decision
//! and hash-chained audit — it wires them, it does not re-implement them.
//!
//! - [`store`]: the database (resources, history, search indexes, relationship facts,
//!   accounts, sessions, OAuth2 clients and tokens, audit), versioned migrations;
//! - [`index`]: validation of resources and what is derived from them on write;
//! - [`search`]: FHIR search parameters, strictly parsed;
//! - [`audit`]: relationship snapshots for decisions, and the audit chain's writer;
//! - [`service`]: the FHIR interactions with access control and audit;
//! - [`api`]: the axum router, authentication and OperationOutcome errors;
//! - [`messaging`]: transfers of care (`$process-message`), the durable inbox and the
//!   export of accepted content to the lake;
//! - [`outbox`]: the sender side — queued messages delivered with retries and back-off;
//! - [`http`]: a minimal HTTP/1.1 client (outbox deliveries, the load generator);
//! - [`openapi`]: the OpenAPI 3 description of the API (`GET /openapi.json`);
//! - [`worklist`]: identifiable population-health worklists for a clinician's practice;
//! - [`cli`]: `trent serve`, `trent send` and `trent audit verify`;
//! - [`trace`]: step timings of the write path with `TRENT_TRACE` set;
//! - [`reclaim`]: large responses freed on a background thread, off the request path.
//!
//! The schema, API, search parameters, error model and operations are in `docs/record.md`.

pub mod api;
pub mod audit;
pub mod cache;
pub mod cli;
pub mod http;
pub mod index;
pub mod messaging;
pub mod openapi;
pub mod outbox;
pub mod reclaim;
pub mod search;
pub mod service;
pub mod store;
pub mod trace;
pub mod worklist;

pub use api::{AppState, Clock, Config, ctrl_c, router, serve, serve_on};
pub use service::{Ctx, FhirError, LoadReport};
pub use store::{Account, Backend, Store, StoreError};
