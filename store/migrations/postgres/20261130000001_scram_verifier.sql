-- Analysts log in to the warehouse's PostgreSQL front end with SCRAM-SHA-256,
-- which needs a verifier the argon2 hash cannot give: PostgreSQL's own form,
-- SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>, set with every
-- new password. It cannot be used to log in if it leaks (like the argon2 hash,
-- it yields the password only to a dictionary attack). Accounts whose password
-- was set before this have none until it is set again.
ALTER TABLE accounts ADD COLUMN scram_verifier TEXT;
