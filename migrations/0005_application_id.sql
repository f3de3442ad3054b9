-- 0005_application_id: mark the file as agentsyncd's in its header
-- (PRAGMA application_id, "agsy"), so that a database of another program
-- is told apart and refused untouched (store.c, store_check_ours), and
-- file(1) can name it.
PRAGMA application_id = 1634169721;
