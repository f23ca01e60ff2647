-- Version 1: configuration, the change feed, the audit trail with one hash
-- chain per replica, cluster membership and the sealed CA.

-- One row: the newest committed revision. Every configuration transaction
-- increments it first, holding the row lock until it commits, so revision
-- order is commit order. compacted_through is the newest revision whose
-- change set was dropped from changes.
CREATE TABLE revision (
    id boolean PRIMARY KEY DEFAULT true CHECK (id),
    revision bigint NOT NULL,
    compacted_through bigint NOT NULL
);
INSERT INTO revision (revision, compacted_through) VALUES (0, 0);

-- The change feed: what each configuration transaction changed.
CREATE TABLE changes (
    revision bigint PRIMARY KEY,
    committed_at timestamptz NOT NULL,
    changes jsonb NOT NULL
);

CREATE TABLE idps (
    name text PRIMARY KEY,
    doc jsonb NOT NULL
);

CREATE TABLE backends (
    name text PRIMARY KEY,
    credential_version integer NOT NULL,
    doc jsonb NOT NULL
);

CREATE TABLE hosts (
    host text PRIMARY KEY,
    backend text NOT NULL REFERENCES backends (name) ON DELETE CASCADE
);
CREATE INDEX hosts_backend ON hosts (backend);

-- sealed is age ciphertext as the caller sealed it; nothing here is clear.
CREATE TABLE credentials (
    backend text NOT NULL REFERENCES backends (name) ON DELETE CASCADE,
    version integer NOT NULL,
    sealed bytea NOT NULL,
    doc jsonb NOT NULL,
    PRIMARY KEY (backend, version)
);

CREATE TABLE agents (
    name text PRIMARY KEY,
    idp text REFERENCES idps (name),
    subject text,
    doc jsonb NOT NULL,
    UNIQUE (idp, subject)
);

CREATE TABLE grants (
    agent text NOT NULL REFERENCES agents (name) ON DELETE CASCADE,
    backend text NOT NULL REFERENCES backends (name) ON DELETE CASCADE,
    doc jsonb NOT NULL,
    PRIMARY KEY (agent, backend)
);
CREATE INDEX grants_backend ON grants (backend);

-- hash is the hash of the whole token; the token itself is never stored.
CREATE TABLE tokens (
    id text PRIMARY KEY,
    agent text NOT NULL REFERENCES agents (name) ON DELETE CASCADE,
    hash bytea NOT NULL,
    doc jsonb NOT NULL
);
CREATE INDEX tokens_agent ON tokens (agent);

-- One row: the newest audit sequence number, across replicas. An append
-- increments it under the row lock, so sequence order is commit order.
CREATE TABLE audit_counter (
    id boolean PRIMARY KEY DEFAULT true CHECK (id),
    seq bigint NOT NULL
);
INSERT INTO audit_counter (seq) VALUES (0);

-- One hash chain per replica: its newest record (head) and the last record
-- pruned from it (anchor), which the oldest kept record links to.
CREATE TABLE audit_chains (
    replica text PRIMARY KEY,
    head_seq bigint NOT NULL DEFAULT 0,
    head_hash text NOT NULL DEFAULT '',
    anchor_seq bigint NOT NULL DEFAULT 0,
    anchor_hash text NOT NULL DEFAULT ''
);

-- record is the event's JSON, the bytes its hash covers plus the hash; the
-- other columns copy fields of it for the queries and are checked against
-- it by verify.
CREATE TABLE audit (
    seq bigint PRIMARY KEY,
    replica text NOT NULL,
    time_ns bigint NOT NULL,
    kind text NOT NULL,
    agent text NOT NULL,
    backend text NOT NULL,
    decision text NOT NULL,
    status integer NOT NULL,
    hash text NOT NULL,
    record text NOT NULL
);
-- (time_ns, seq): QueryAudit finds the first seq of a Since from it alone.
CREATE INDEX audit_time ON audit (time_ns, seq);
CREATE INDEX audit_replica ON audit (replica, seq);
CREATE INDEX audit_agent ON audit (agent, seq);
CREATE INDEX audit_backend ON audit (backend, seq);
-- Decision, kind and status are searched for their rare values (denies,
-- admin and TLS events, error statuses); partial indexes hold only those,
-- so the common allowed 2xx request costs them nothing on insert. A query
-- for a common value reads the primary key, where it is most rows anyway.
CREATE INDEX audit_denied ON audit (seq) WHERE decision = 'deny';
CREATE INDEX audit_not_request ON audit (kind, seq) WHERE kind <> 'request';
CREATE INDEX audit_error_status ON audit (status, seq) WHERE status >= 400;

-- Cluster membership: each replica's advertised addresses and heartbeat,
-- stamped with the database's clock so replicas' clocks do not matter.
CREATE TABLE members (
    id text PRIMARY KEY,
    addresses text[] NOT NULL,
    version text NOT NULL,
    first_seen timestamptz NOT NULL,
    last_heartbeat timestamptz NOT NULL
);

-- One row: the cluster's CA, its key sealed with age by the caller.
CREATE TABLE ca (
    id boolean PRIMARY KEY DEFAULT true CHECK (id),
    cert_pem text NOT NULL,
    sealed_key bytea NOT NULL,
    created_at timestamptz NOT NULL
);
