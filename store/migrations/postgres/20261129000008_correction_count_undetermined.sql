-- A case's correction count (bzcs) may be undetermined: the registry sent
-- something that is not a whole number. The case is kept and counted; its
-- first-time-right is left undetermined (NULL), never read as 0.
ALTER TABLE cases ALTER COLUMN correction_count DROP NOT NULL;
