-- 0004_clock_skew: how far the host's clock is ahead of upstream's (seconds,
-- negative when behind), measured from the Date header of the source's
-- responses; NULL until one had a Date.  Comparisons of upstream times
-- with "now" use upstream's clock (README "Sync rules"); this keeps the
-- measured difference for --status.
ALTER TABLE sync_state ADD COLUMN clock_skew_seconds REAL;
