-- Every change made through the API or the console (#13): who (the API key's or the console
-- account's name), when, from which address, what (the method and path; never a body, so no
-- secret), and the outcome (the HTTP status). The application only ever inserts into it.
CREATE TABLE audit_log (
    id      BIGSERIAL PRIMARY KEY,
    at      BIGINT NOT NULL,
    actor   TEXT NOT NULL,
    address TEXT NOT NULL,
    method  TEXT NOT NULL,
    path    TEXT NOT NULL,
    status  BIGINT NOT NULL
);
CREATE INDEX audit_log_at ON audit_log (at);
