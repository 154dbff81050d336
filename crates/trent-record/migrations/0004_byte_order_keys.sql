-- trent-record schema, version 4, PostgreSQL only (SQLite records the version and runs
-- nothing: its text already compares byte by byte, collation BINARY).
--
-- Every text column a key or an index reads compares byte by byte (collation "C")
-- instead of by the database's locale. These columns hold identifiers, codes, ODS codes,
-- fixed-width UTC times and lower-cased search strings, whose only order is byte order;
-- a locale's collation (`strcoll`, even for C.UTF-8) costs more on every B-tree step of
-- every insert and lookup, and makes PostgreSQL unable to answer `LIKE 'prefix%'` from a
-- plain index. Measured: a 1,000-Observation bundle's inserts (docs/benchmarks.md,
-- issue 7). The order is then the same as SQLite's, so both backends sort ids alike.
ALTER TABLE resource
    ALTER COLUMN res_type TYPE TEXT COLLATE "C",
    ALTER COLUMN res_id TYPE TEXT COLLATE "C",
    ALTER COLUMN person_id TYPE TEXT COLLATE "C";
ALTER TABLE resource_history
    ALTER COLUMN res_type TYPE TEXT COLLATE "C",
    ALTER COLUMN res_id TYPE TEXT COLLATE "C";
ALTER TABLE idx_token
    ALTER COLUMN res_type TYPE TEXT COLLATE "C",
    ALTER COLUMN res_id TYPE TEXT COLLATE "C",
    ALTER COLUMN param TYPE TEXT COLLATE "C",
    ALTER COLUMN system TYPE TEXT COLLATE "C",
    ALTER COLUMN code TYPE TEXT COLLATE "C";
ALTER TABLE idx_string
    ALTER COLUMN res_type TYPE TEXT COLLATE "C",
    ALTER COLUMN res_id TYPE TEXT COLLATE "C",
    ALTER COLUMN param TYPE TEXT COLLATE "C",
    ALTER COLUMN value TYPE TEXT COLLATE "C";
ALTER TABLE idx_date
    ALTER COLUMN res_type TYPE TEXT COLLATE "C",
    ALTER COLUMN res_id TYPE TEXT COLLATE "C",
    ALTER COLUMN param TYPE TEXT COLLATE "C",
    ALTER COLUMN low TYPE TEXT COLLATE "C",
    ALTER COLUMN high TYPE TEXT COLLATE "C";
ALTER TABLE idx_reference
    ALTER COLUMN res_type TYPE TEXT COLLATE "C",
    ALTER COLUMN res_id TYPE TEXT COLLATE "C",
    ALTER COLUMN param TYPE TEXT COLLATE "C",
    ALTER COLUMN target_type TYPE TEXT COLLATE "C",
    ALTER COLUMN target_id TYPE TEXT COLLATE "C";
ALTER TABLE registration
    ALTER COLUMN person_id TYPE TEXT COLLATE "C",
    ALTER COLUMN practice TYPE TEXT COLLATE "C";
ALTER TABLE care_link
    ALTER COLUMN res_type TYPE TEXT COLLATE "C",
    ALTER COLUMN res_id TYPE TEXT COLLATE "C",
    ALTER COLUMN person_id TYPE TEXT COLLATE "C",
    ALTER COLUMN organisation TYPE TEXT COLLATE "C";
ALTER TABLE caseload
    ALTER COLUMN person_id TYPE TEXT COLLATE "C",
    ALTER COLUMN team_id TYPE TEXT COLLATE "C";
ALTER TABLE carer_grant
    ALTER COLUMN grant_id TYPE TEXT COLLATE "C",
    ALTER COLUMN person_id TYPE TEXT COLLATE "C";
ALTER TABLE opt_out
    ALTER COLUMN person_id TYPE TEXT COLLATE "C";
ALTER TABLE account
    ALTER COLUMN user_id TYPE TEXT COLLATE "C";
ALTER TABLE session
    ALTER COLUMN token_hash TYPE TEXT COLLATE "C";
ALTER TABLE oauth_client
    ALTER COLUMN client_id TYPE TEXT COLLATE "C";
ALTER TABLE access_token
    ALTER COLUMN token_hash TYPE TEXT COLLATE "C";
ALTER TABLE audit
    ALTER COLUMN subject_person TYPE TEXT COLLATE "C";
ALTER TABLE message_sender
    ALTER COLUMN client_id TYPE TEXT COLLATE "C";
ALTER TABLE inbox
    ALTER COLUMN message_id TYPE TEXT COLLATE "C",
    ALTER COLUMN received_at TYPE TEXT COLLATE "C";
ALTER TABLE outbox
    ALTER COLUMN message_id TYPE TEXT COLLATE "C",
    ALTER COLUMN destination TYPE TEXT COLLATE "C",
    ALTER COLUMN status TYPE TEXT COLLATE "C",
    ALTER COLUMN next_attempt TYPE TEXT COLLATE "C";
