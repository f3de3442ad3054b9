/* SPDX-License-Identifier: ISC */
/*
 * fuzz_pages.c: libFuzzer harness for both page parsers.  The first byte
 * picks the adapter; the rest is the body.  Every accepted page must hold
 * spans inside the body and counts that add up.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "source.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const struct source_type *t;
	struct page p;
	char err[200];
	size_t i;

	if (size < 1)
		return 0;
	log_set_level(LOG_LEVEL_ERROR);
	t = data[0] & 1 ? &source_cotool : &source_codegen;
	if (t->parse_page((const char *)data + 1, size - 1, 100, &p, err,
		sizeof(err)) == 0) {
		if (p.nruns + p.nrejects != p.nitems || p.total < 0)
			abort();
		for (i = 0; i < p.nruns; i++) {
			const struct run *r = &p.runs[i];

			if (r->external_id == NULL || r->raw_len == 0 ||
			    strlen(run_state_name(r->state)) == 0)
				abort();
		}
		page_free(&p);
	} else if (p.runs != NULL || p.tree != NULL) {
		abort(); /* a refused body leaves nothing behind */
	}
	return 0;
}
