-- What an incremental warehouse refresh reads of the child tables: the rows
-- written since the previous snapshot's watermark (and the watermark itself,
-- MAX(ingested_at)), through an index instead of a scan of every row.
CREATE INDEX qc_findings_ingested ON qc_findings (ingested_at);
CREATE INDEX evaluations_ingested ON evaluations (ingested_at);
