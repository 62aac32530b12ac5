-- +goose Up
CREATE TABLE users (
    id             uuid        PRIMARY KEY,
    issuer         text        NOT NULL,
    subject        text        NOT NULL,
    email          text        NOT NULL DEFAULT '',
    email_verified boolean     NOT NULL DEFAULT false,
    name           text        NOT NULL DEFAULT '',
    roles          jsonb       NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(roles) = 'array'),
    "groups"       jsonb       NOT NULL DEFAULT '[]' CHECK (jsonb_typeof("groups") = 'array'),
    granted_roles  jsonb       NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(granted_roles) = 'array'),
    disabled       boolean     NOT NULL DEFAULT false,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    last_login_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT users_issuer_subject_key UNIQUE (issuer, subject)
);
CREATE INDEX users_email_lower_idx ON users (lower(email));
CREATE INDEX users_last_login_at_idx ON users (last_login_at DESC);

CREATE TABLE audit_events (
    id             bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    time           timestamptz NOT NULL,
    kind           text        NOT NULL,
    user_id        uuid        NULL,
    session_handle text        NOT NULL DEFAULT '',
    ip             text        NOT NULL DEFAULT '',
    user_agent     text        NOT NULL DEFAULT '',
    route          text        NOT NULL DEFAULT '',
    reason         text        NOT NULL DEFAULT ''
);
CREATE INDEX audit_events_user_id_time_idx ON audit_events (user_id, time DESC);
CREATE INDEX audit_events_time_idx ON audit_events (time DESC);

-- +goose Down
DROP TABLE audit_events;
DROP TABLE users;
