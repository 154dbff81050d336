-- trent-record schema, version 1. Portable SQL: the same text runs on SQLite and
-- PostgreSQL (TEXT and BIGINT only; times are RFC 3339 UTC text with fixed width, so
-- text order is time order). Statements are separated by a semicolon at the end of a line.

-- The current version of every resource (HAPI-like: one generic table, JSON body).
CREATE TABLE resource (
    res_type     TEXT   NOT NULL,
    res_id       TEXT   NOT NULL,
    version      BIGINT NOT NULL,
    person_id    TEXT,
    last_updated TEXT   NOT NULL,
    deleted      BIGINT NOT NULL,
    json         TEXT   NOT NULL,
    PRIMARY KEY (res_type, res_id)
);
CREATE INDEX resource_person ON resource (person_id, res_type);

-- Every version ever written (the current one included).
CREATE TABLE resource_history (
    res_type     TEXT   NOT NULL,
    res_id       TEXT   NOT NULL,
    version      BIGINT NOT NULL,
    last_updated TEXT   NOT NULL,
    deleted      BIGINT NOT NULL,
    json         TEXT   NOT NULL,
    PRIMARY KEY (res_type, res_id, version)
);

-- Search indexes, rebuilt for a resource on every write.
CREATE TABLE idx_token (
    res_type TEXT NOT NULL,
    res_id   TEXT NOT NULL,
    param    TEXT NOT NULL,
    system   TEXT NOT NULL,
    code     TEXT NOT NULL
);
CREATE INDEX idx_token_lookup ON idx_token (res_type, param, code);
CREATE INDEX idx_token_owner ON idx_token (res_type, res_id);

CREATE TABLE idx_string (
    res_type TEXT NOT NULL,
    res_id   TEXT NOT NULL,
    param    TEXT NOT NULL,
    value    TEXT NOT NULL
);
CREATE INDEX idx_string_lookup ON idx_string (res_type, param, value);
CREATE INDEX idx_string_owner ON idx_string (res_type, res_id);

CREATE TABLE idx_date (
    res_type TEXT NOT NULL,
    res_id   TEXT NOT NULL,
    param    TEXT NOT NULL,
    low      TEXT NOT NULL,
    high     TEXT NOT NULL
);
CREATE INDEX idx_date_lookup ON idx_date (res_type, param, low);
CREATE INDEX idx_date_owner ON idx_date (res_type, res_id);

CREATE TABLE idx_reference (
    res_type    TEXT NOT NULL,
    res_id      TEXT NOT NULL,
    param       TEXT NOT NULL,
    target_type TEXT NOT NULL,
    target_id   TEXT NOT NULL
);
CREATE INDEX idx_reference_lookup ON idx_reference (res_type, param, target_id);
CREATE INDEX idx_reference_owner ON idx_reference (res_type, res_id);

-- Relationship facts derived from resources on write (trent_access::Relationships).
CREATE TABLE registration (
    person_id TEXT NOT NULL PRIMARY KEY,
    practice  TEXT NOT NULL
);

CREATE TABLE care_link (
    res_type     TEXT NOT NULL,
    res_id       TEXT NOT NULL,
    person_id    TEXT NOT NULL,
    kind         TEXT NOT NULL,
    organisation TEXT NOT NULL,
    start_at     TEXT NOT NULL,
    end_at       TEXT,
    PRIMARY KEY (res_type, res_id, organisation)
);
CREATE INDEX care_link_person ON care_link (person_id);

-- Relationship facts kept in their own tables (no FHIR resource in the record carries them).
CREATE TABLE caseload (
    person_id TEXT NOT NULL,
    team_id   TEXT NOT NULL,
    PRIMARY KEY (person_id, team_id)
);

CREATE TABLE carer_grant (
    grant_id  TEXT NOT NULL PRIMARY KEY,
    person_id TEXT NOT NULL,
    carer     TEXT NOT NULL,
    kinds     TEXT NOT NULL,
    expires   TEXT,
    revoked   TEXT
);
CREATE INDEX carer_grant_person ON carer_grant (person_id);

CREATE TABLE opt_out (
    person_id     TEXT NOT NULL PRIMARY KEY,
    registered_at TEXT NOT NULL
);

-- Accounts, sessions, OAuth2 clients and tokens: secrets only as hashes.
CREATE TABLE account (
    user_id       TEXT   NOT NULL PRIMARY KEY,
    role          TEXT   NOT NULL,
    organisation  TEXT,
    team          TEXT,
    person_id     TEXT,
    password_hash TEXT   NOT NULL,
    disabled      BIGINT NOT NULL,
    created_at    TEXT   NOT NULL
);

CREATE TABLE session (
    token_hash TEXT NOT NULL PRIMARY KEY,
    user_id    TEXT NOT NULL,
    created    TEXT NOT NULL,
    last_seen  TEXT NOT NULL,
    expires    TEXT NOT NULL
);

CREATE TABLE oauth_client (
    client_id   TEXT NOT NULL PRIMARY KEY,
    secret_hash TEXT NOT NULL,
    scopes      TEXT NOT NULL
);

CREATE TABLE access_token (
    token_hash TEXT NOT NULL PRIMARY KEY,
    client_id  TEXT NOT NULL,
    scopes     TEXT NOT NULL,
    issued     TEXT NOT NULL,
    expires    TEXT NOT NULL
);

-- The hash-chained audit (trent_access::audit JSON lines, one row per line).
CREATE TABLE audit (
    seq            BIGINT NOT NULL PRIMARY KEY,
    subject_person TEXT,
    line           TEXT   NOT NULL
);
CREATE INDEX audit_subject ON audit (subject_person, seq);
