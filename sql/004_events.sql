-- 004: the event log. Every state change of a job, node or domain budget is one row,
-- written in the same transaction as the change; seq is the order clients follow
-- (GET /v1/events?since=SEQ) and the idempotency key webhook receivers deduplicate by.
-- Retention (by count and age) deletes from the low end.
CREATE TABLE events (
  seq  INTEGER PRIMARY KEY,
  ts   INTEGER NOT NULL,
  type TEXT NOT NULL,
  job  INTEGER,
  node TEXT,
  data TEXT NOT NULL DEFAULT '{}'
);
