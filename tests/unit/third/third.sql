-- SPDX-License-Identifier: ISC
-- The third test API's typed columns: the one migration its fields[]
-- need (tests/unit/third/third.c).  Numbered after the daemon's own
-- migrations by the Makefile rule that embeds it into the third build.
ALTER TABLE runs ADD COLUMN thing_size INTEGER;
ALTER TABLE runs ADD COLUMN thing_owner TEXT;
ALTER TABLE runs ADD COLUMN label_count INTEGER;
CREATE TABLE thing_labels (
    run_id   INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    label    TEXT,
    PRIMARY KEY (run_id, position)
);
