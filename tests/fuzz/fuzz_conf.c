/* SPDX-License-Identifier: ISC */
/*
 * fuzz_conf.c: libFuzzer harness for the configuration parser: any bytes
 * give a configuration or FILE:LINE messages, never a crash.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "conf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char path[] = "/tmp/agentsyncd-fuzz-conf-XXXXXX";
	struct conf *c;
	FILE *null;
	int fd;

	setenv("FUZZ_TOKEN", "fuzz-token", 1);
	fd = mkstemp(path);
	if (fd == -1)
		return 0;
	if (write(fd, data, size) != (ssize_t)size) {
		close(fd);
		unlink(path);
		return 0;
	}
	close(fd);
	null = fopen("/dev/null", "w");
	c = conf_load(path, null, 0);
	conf_free(c);
	fclose(null);
	unlink(path);
	return 0;
}
