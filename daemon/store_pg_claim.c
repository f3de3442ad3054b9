/* SPDX-License-Identifier: ISC */
/*
 * store_pg_claim.c: which daemon walks each source, when several share
 * one PostgreSQL database (store_claim(), store_release()).
 *
 * A claim is a session-level advisory lock, pg_try_advisory_lock(K), with
 * K the first 64 bits of md5('SCHEMA/SOURCE') read as a signed bigint:
 *   ('x' || substr(md5('agentsyncd/codegen'), 1, 16))::bit(64)::bigint
 * (README "Operations").  The lock lives as long as the connection: a
 * daemon killed, stopped or cut off loses it when the server drops its
 * session (at once for a closed socket; within the keepalives, about 25 s
 * by default, for a host that vanished), and a standby's next try takes
 * it.  A row of source_holders says who holds it ("HOST pid PID"); it
 * counts only while its backend lives.  A connection this process lost
 * took its locks with it: the claims are forgotten and the caller claims
 * again.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "store_pg.h"

#define CLAIM_KEY \
	"('x' || substr(md5($1 || '/' || $2), 1, 16))::bit(64)::bigint"

/* "HOST pid PID", once. */
static const char *
holder_name(struct pg_store *store)
{
	char host[256];

	if (store->holder[0] != '\0')
		return store->holder;
	if (gethostname(host, sizeof(host)) == -1)
		snprintf(host, sizeof(host), "unknown");
	host[sizeof(host) - 1] = '\0';
	snprintf(store->holder, sizeof(store->holder), "%s pid %ld", host,
	    (long)getpid());
	return store->holder;
}

static int
held_index(const struct pg_store *store, const char *source)
{
	int i;

	for (i = 0; i < store->nclaims; i++)
		if (strcmp(store->claims[i], source) == 0)
			return i;
	return -1;
}

int
pg_holds(const struct pg_store *store, const char *source)
{
	return held_index(store, source) >= 0;
}

void
pg_forget_claims(struct pg_store *store)
{
	int i;

	for (i = 0; i < store->nclaims; i++)
		free(store->claims[i]);
	store->nclaims = 0;
}

/* Who holds source, into holder (empty when nobody alive says). */
static int
read_holder(struct pg_store *store, const char *source, char *holder,
    size_t len)
{
	struct pg_params p;
	PGresult *res;

	pp_reset(&p);
	pp_text(&p, source);
	res = pg_query(store, "cannot read the holder",
	    "SELECT holder FROM source_holders h WHERE source = $1 AND "
	    "EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.pid = "
	    "h.backend_pid)",
	    &p);
	if (res == NULL)
		return -1;
	if (holder != NULL && len > 0 && PQntuples(res) > 0)
		pg_copy(res, 0, 0, holder, len);
	PQclear(res);
	return 0;
}

/* Say this process holds source (it has the lock). */
static int
write_holder(struct pg_store *store, const char *source)
{
	struct pg_params p;

	pp_reset(&p);
	pp_text(&p, source);
	pp_text(&p, holder_name(store));
	return pg_run(store, "cannot record the holder",
	    "INSERT INTO source_holders (source, holder, backend_pid, since, "
	    "heartbeat_at) VALUES ($1, $2, pg_backend_pid(), now(), now()) "
	    "ON CONFLICT (source) DO UPDATE SET holder = excluded.holder, "
	    "backend_pid = excluded.backend_pid, since = CASE WHEN "
	    "source_holders.backend_pid = excluded.backend_pid THEN "
	    "source_holders.since ELSE excluded.since END, heartbeat_at = "
	    "excluded.heartbeat_at",
	    &p, NULL);
}

int
pg_claim(struct store *base, const char *source, char *holder, size_t len)
{
	struct pg_store *store = pg_of(base);
	struct pg_params p;
	PGresult *res;
	int got;

	pg_end_batch(store);
	if (pg_ready(store) == -1)
		return -1;
	if (held_index(store, source) >= 0)
		return write_holder(store, source) == -1 ? -1 : 1;
	if (store->nclaims == PG_MAX_CLAIMS) {
		log_error("database '%s': more than %d sources to hold",
		    store->uri, PG_MAX_CLAIMS);
		return -1;
	}
	pp_reset(&p);
	pp_text(&p, store->schema);
	pp_text(&p, source);
	res = pg_query(store, "cannot claim the source",
	    "SELECT pg_try_advisory_lock(" CLAIM_KEY ")", &p);
	if (res == NULL)
		return -1;
	got = pg_flag(res, 0, 0);
	PQclear(res);
	if (!got)
		return read_holder(store, source, holder, len) == -1 ? -1 : 0;
	if ((store->claims[store->nclaims] = strdup(source)) == NULL) {
		log_error("out of memory");
		return -1;
	}
	store->nclaims++;
	if (write_holder(store, source) == -1)
		return -1;
	log_info("source '%s': held by this daemon (%s)", source,
	    holder_name(store));
	return 1;
}

void
pg_release(struct store *base, const char *source)
{
	struct pg_store *store = pg_of(base);
	struct pg_params p;
	int i = held_index(store, source);

	if (i < 0)
		return;
	free(store->claims[i]);
	store->claims[i] = store->claims[--store->nclaims];
	pg_end_batch(store);
	if (pg_ready(store) == -1)
		return; /* the connection, and the lock, are gone */
	pp_reset(&p);
	pp_text(&p, store->schema);
	pp_text(&p, source);
	(void)pg_run(store, "cannot release the source",
	    "SELECT pg_advisory_unlock(" CLAIM_KEY ")", &p, NULL);
	pp_reset(&p);
	pp_text(&p, source);
	(void)pg_run(store, "cannot release the source",
	    "DELETE FROM source_holders WHERE source = $1 AND backend_pid = "
	    "pg_backend_pid()",
	    &p, NULL);
}
