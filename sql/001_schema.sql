-- 001: the first schema. Names are the keys: they are what operators and the API use,
-- and they stay valid across restarts (in-memory indexes do not).
CREATE TABLE models (
  name          TEXT PRIMARY KEY,
  vendor        TEXT NOT NULL,
  stack         TEXT NOT NULL,
  memory_gib    INTEGER NOT NULL,
  bandwidth_gbs INTEGER NOT NULL,
  bf16_tflops   REAL NOT NULL,
  fp8_tflops    REAL NOT NULL,
  tdp_w         INTEGER NOT NULL,
  min_cap_w     INTEGER NOT NULL,
  idle_w        INTEGER NOT NULL,
  builtin       INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE domains (
  name     TEXT PRIMARY KEY,
  parent   TEXT,
  budget_w INTEGER NOT NULL
);

CREATE TABLE nodes (
  name         TEXT PRIMARY KEY,
  domain       TEXT NOT NULL,
  host_idle_w  INTEGER NOT NULL,
  grp          TEXT NOT NULL DEFAULT '',
  labels       TEXT NOT NULL DEFAULT '{}',
  exporter_url TEXT NOT NULL DEFAULT '',
  state        TEXT NOT NULL DEFAULT 'up'
);

CREATE TABLE devices (
  node   TEXT NOT NULL,
  idx    INTEGER NOT NULL,
  model  TEXT NOT NULL,
  health TEXT NOT NULL DEFAULT 'ok',
  PRIMARY KEY (node, idx)
) WITHOUT ROWID;

CREATE TABLE jobs (
  id             INTEGER PRIMARY KEY,
  name           TEXT NOT NULL,
  kind           TEXT NOT NULL,
  state          TEXT NOT NULL,
  uid            INTEGER NOT NULL,
  owner          TEXT NOT NULL,
  queue          TEXT NOT NULL,
  priority       INTEGER NOT NULL,
  preemptible    INTEGER NOT NULL,
  count          INTEGER NOT NULL,
  devices        INTEGER NOT NULL,
  topology       TEXT NOT NULL,
  cap_w          INTEGER NOT NULL,
  min_memory_gib INTEGER NOT NULL,
  fp8            INTEGER NOT NULL,
  stack          TEXT NOT NULL,
  vendors        TEXT NOT NULL,   -- comma-separated
  models         TEXT NOT NULL,   -- comma-separated
  duration_s     INTEGER NOT NULL,
  idem_key       TEXT,
  reason         TEXT,
  submitted_at   INTEGER NOT NULL,
  placed_at      INTEGER NOT NULL,
  finished_at    INTEGER NOT NULL
);
CREATE UNIQUE INDEX jobs_idem ON jobs(uid, idem_key) WHERE idem_key IS NOT NULL;

-- One row per placed worker/replica: the devices (bit mask of indexes) on one node.
-- Kept after the job ends, as its history; only jobs placed/running hold the devices.
CREATE TABLE placements (
  job    INTEGER NOT NULL,
  worker INTEGER NOT NULL,
  node   TEXT NOT NULL,
  model  TEXT NOT NULL,
  mask   INTEGER NOT NULL,
  cap_w  INTEGER NOT NULL,
  PRIMARY KEY (job, worker)
) WITHOUT ROWID;
