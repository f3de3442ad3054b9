/* SPDX-License-Identifier: ISC */
/*
 * runcols.h: a run's declared fields by column name, for the tests
 * (include after cmocka.h and source.h).  The adapter is the one of
 * source_types[] that declares the column: codegen's and cotool's
 * columns are apart.
 */
#ifndef AGENTSYNCD_RUNCOLS_H
#define AGENTSYNCD_RUNCOLS_H

#include <string.h>

/* The index of column name in t's fields, or -1. */
static inline int
field_index(const struct source_type *t, const char *name)
{
	size_t k;

	for (k = 0; k < t->nfields; k++)
		if (t->fields[k].column != NULL &&
		    strcmp(t->fields[k].column, name) == 0)
			return (int)k;
	return -1;
}

/* r's value of column name. */
static inline const struct value *
COL(const struct run *r, const char *name)
{
	size_t a;
	int k;

	for (a = 0; source_types[a] != NULL; a++)
		if ((k = field_index(source_types[a], name)) >= 0) {
			if (r->values == NULL)
				fail_msg("run %s has no values",
				    r->external_id);
			return &r->values[k];
		}
	fail_msg("no adapter declares column %s", name);
	return NULL;
}

/* Cell i of row j of r's array column name. */
static inline const struct value *
CELL(const struct run *r, const char *name, size_t j, size_t i)
{
	size_t a;

	for (a = 0; source_types[a] != NULL; a++)
		if (field_index(source_types[a], name) >= 0)
			return &COL(r, name)->v.cells[j *
				source_types[a]
				    ->fields[field_index(source_types[a], name)]
				    .nitems +
			    i];
	fail_msg("no adapter declares column %s", name);
	return NULL;
}

#endif
