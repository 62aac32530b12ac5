-- +goose Up
CREATE TABLE users (
    id             TEXT      PRIMARY KEY,
    issuer         TEXT      NOT NULL,
    subject        TEXT      NOT NULL,
    email          TEXT      NOT NULL DEFAULT '',
    email_verified BOOLEAN   NOT NULL DEFAULT FALSE,
    name           TEXT      NOT NULL DEFAULT '',
    roles          TEXT      NOT NULL DEFAULT '[]' CHECK (json_type(roles) = 'array'),
    "groups"       TEXT      NOT NULL DEFAULT '[]' CHECK (json_type("groups") = 'array'),
    granted_roles  TEXT      NOT NULL DEFAULT '[]' CHECK (json_type(granted_roles) = 'array'),
    disabled       BOOLEAN   NOT NULL DEFAULT FALSE,
    created_at     TIMESTAMP NOT NULL,
    updated_at     TIMESTAMP NOT NULL,
    last_login_at  TIMESTAMP NOT NULL,
    CONSTRAINT users_issuer_subject_key UNIQUE (issuer, subject)
);
CREATE INDEX users_email_lower_idx ON users (lower(email));
CREATE INDEX users_last_login_at_idx ON users (last_login_at DESC);

CREATE TABLE audit_events (
    id             INTEGER   PRIMARY KEY AUTOINCREMENT,
    time           TIMESTAMP NOT NULL,
    kind           TEXT      NOT NULL,
    user_id        TEXT      NULL,
    session_handle TEXT      NOT NULL DEFAULT '',
    ip             TEXT      NOT NULL DEFAULT '',
    user_agent     TEXT      NOT NULL DEFAULT '',
    route          TEXT      NOT NULL DEFAULT '',
    reason         TEXT      NOT NULL DEFAULT ''
);
CREATE INDEX audit_events_user_id_time_idx ON audit_events (user_id, time DESC);
CREATE INDEX audit_events_time_idx ON audit_events (time DESC);

-- +goose Down
DROP TABLE audit_events;
DROP TABLE users;
