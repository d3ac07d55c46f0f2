-- 003: the placement engine's request fields: inference min_replicas, capability mode
-- (per-worker needs; the core picks model and device count), "cap":"auto" with a
-- performance floor, and how often a job went back to pending.
ALTER TABLE jobs ADD COLUMN min_count INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN capability INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN need_memory_gib INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN need_bandwidth_gbs INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN need_bf16_tflops REAL NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN need_fp8 INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN cap_auto INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN min_perf REAL NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN requeues INTEGER NOT NULL DEFAULT 0;
