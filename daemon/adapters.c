/* SPDX-License-Identifier: ISC */
/*
 * adapters.c: the table of APIs agentsyncd can mirror.  A new API is one
 * file defining its struct source_type (see source.h) and one line here.
 */
#include <stddef.h>

#include "source.h"

const struct source_type *const source_types[] = { &source_codegen,
	&source_cotool, NULL };
