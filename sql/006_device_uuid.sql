-- 006: a device's UUID as its exporter labels it (dcgm-exporter's UUID label), so the
-- scraper maps series by UUID and not only by index (indexes can differ from nvidia-smi's
-- order when CUDA_VISIBLE_DEVICES or MIG reorders them). NULL when the fleet gave none.
ALTER TABLE devices ADD COLUMN uuid TEXT;
