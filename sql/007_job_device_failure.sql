-- 007: what a job wants when one of its devices fails: 'requeue' (training's default:
-- the gang goes back to pending, its other devices freed) or 'keep' (inference's default,
-- and for jobs whose launcher recovers in place: the job keeps its devices and gets the event).
ALTER TABLE jobs ADD COLUMN on_device_failure TEXT NOT NULL DEFAULT 'requeue';
UPDATE jobs SET on_device_failure = 'keep' WHERE kind = 'inference';
