-- Only accounts that may log in to the warehouse's PostgreSQL front end (roles
-- qc and leadership) keep a SCRAM-SHA-256 verifier: any other account's was
-- never of use and is one more thing to leak. From now on the store writes a
-- verifier only for those roles (store::accounts::SQL_FRONT_END_ROLES).
UPDATE accounts SET scram_verifier = NULL WHERE role NOT IN ('qc', 'leadership');
