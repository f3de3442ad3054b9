-- SPDX-License-Identifier: ISC
-- 0010_walk_generation: deletion marks that no clock can fake.
--
-- A complete full resync marked deleted the source's runs whose
-- last_seen_at was before the walk's walk_started_at: two readings of the
-- host's wall clock.  A clock stepped back during the walk (NTP or
-- timesyncd right after boot) made every run seen after the step look
-- unseen: a full resync of 3,000 + 3,000 runs with the clock stepped back
-- 1 h one second in marked 4,209 of the 6,000 live runs deleted.  Now each
-- walk of a source has a number and each sighting records it; wall time no
-- longer decides what is gone (README "Sync rules", Full resync).
--
-- sync_state.walk_generation: the number of the source's walk under way,
-- or of its last one; one more for each walk begun, none for a walk
-- resumed after a restart (saved with the cursor, as the other walk_*).
ALTER TABLE sync_state ADD COLUMN walk_generation INTEGER NOT NULL DEFAULT 0;
-- runs.last_seen_walk: the walk_generation of the walk that last wrote or
-- confirmed the run (written with last_seen_at: insert, change, and the
-- sighting of a full resync).  A complete, verified full walk marks the
-- source's live runs whose last_seen_walk is below its own number.
ALTER TABLE runs ADD COLUMN last_seen_walk INTEGER NOT NULL DEFAULT 0;
-- A full resync under way when the older binary stopped is resumed by
-- this one, and decides as the older rule would have: what it saw before
-- the upgrade is what it wrote at or after its start (last_seen_at >=
-- walk_started_at; the walk's own sightings, times of one clock), which
-- gets its number, 1; every other run keeps 0.  Only such sources' runs
-- are read (through runs_source_created); other sources start at 0 and
-- their next walk is 1.
UPDATE sync_state SET walk_generation = 1 WHERE walk_mode = 'full';
UPDATE runs SET last_seen_walk = 1
WHERE source IN (SELECT source FROM sync_state WHERE walk_mode = 'full')
    AND last_seen_at >= (SELECT s.walk_started_at FROM sync_state s
	WHERE s.source = runs.source);
