-- 008: webhooks. A node may name an agent URL that receives its events; every event bound
-- for a webhook is written to the outbox in the same transaction as the event, and its row
-- is deleted only once the endpoint answered 2xx — so a receiver that is down, or a daemon
-- killed mid-delivery, loses nothing (delivery is at least once; seq is the idempotency key).
ALTER TABLE nodes ADD COLUMN agent_url TEXT NOT NULL DEFAULT '';
CREATE TABLE webhook_outbox (
  endpoint TEXT NOT NULL,      -- the URL
  seq      INTEGER NOT NULL,   -- the event's sequence number
  key      INTEGER NOT NULL,   -- ordering key: the job id, a node's hash with the top bit set, 0 = none
  type     TEXT NOT NULL,      -- the event type (the Joule-Event header)
  body     TEXT NOT NULL,      -- the event as JSON, exactly what is POSTed
  PRIMARY KEY (endpoint, seq)
) WITHOUT ROWID;
-- Sequence numbers are never reused, even when retention dropped every event: webhook
-- receivers deduplicate by them. trim_events records the highest seq it dropped.
CREATE TABLE event_mark (
  id    INTEGER PRIMARY KEY CHECK (id = 1),
  below INTEGER NOT NULL      -- every seq below this was used
);
