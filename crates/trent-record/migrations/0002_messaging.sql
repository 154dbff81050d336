-- trent-record schema, version 2: transfers of care (FHIR messaging). Portable SQL as in
-- version 1 (TEXT and BIGINT only; RFC 3339 UTC text times).

-- Which OAuth2 client speaks for which sending organisation (ODS code). A message is
-- accepted only from a registered client whose organisation is MessageHeader.sender.
CREATE TABLE message_sender (
    client_id    TEXT NOT NULL PRIMARY KEY,
    organisation TEXT NOT NULL
);

-- The durable inbox: every message with a MessageHeader.id from a known sender that was
-- processed to a final answer (ok or fatal-error), committed in the same transaction as
-- the record writes it caused. A repeat of a message id is answered from here.
CREATE TABLE inbox (
    message_id    TEXT   NOT NULL PRIMARY KEY,
    sender_client TEXT   NOT NULL,
    sender_org    TEXT   NOT NULL,
    event         TEXT   NOT NULL,
    received_at   TEXT   NOT NULL,
    outcome       TEXT   NOT NULL,
    http_status   BIGINT NOT NULL,
    message       TEXT   NOT NULL,
    response      TEXT   NOT NULL,
    written       TEXT   NOT NULL,
    exported      BIGINT NOT NULL
);
CREATE INDEX inbox_exported ON inbox (exported, received_at);

-- The sender-side outbox for trent-to-trent exchange. Tokens are never stored.
CREATE TABLE outbox (
    message_id    TEXT   NOT NULL,
    destination   TEXT   NOT NULL,
    body          TEXT   NOT NULL,
    status        TEXT   NOT NULL,
    attempts      BIGINT NOT NULL,
    next_attempt  TEXT   NOT NULL,
    last_error    TEXT,
    response_code TEXT,
    response      TEXT,
    created_at    TEXT   NOT NULL,
    updated_at    TEXT   NOT NULL,
    PRIMARY KEY (message_id, destination)
);
CREATE INDEX outbox_due ON outbox (status, next_attempt);
