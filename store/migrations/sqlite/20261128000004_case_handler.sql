-- Who handled a case at a counter window or a self-service terminal (the
-- registry's 办理人 code, e.g. ZZ03): self-service operators see only these.
ALTER TABLE cases ADD COLUMN handler TEXT;
CREATE INDEX cases_handler ON cases (handler, submitted_at);
