-- 005: what telemetry knows about a device survives a restart: why it is not ok, and the
-- last XID its exporter reported (the exporter repeats it forever, so only a different
-- one is news; forgetting it would fail the device again at every start).
ALTER TABLE devices ADD COLUMN reason TEXT;
ALTER TABLE devices ADD COLUMN last_xid INTEGER NOT NULL DEFAULT 0;
