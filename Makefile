# SPDX-License-Identifier: ISC
# agentsyncd: one Makefile.  `make` builds ./agentsyncd; `make test` installs
# missing Debian packages, builds and runs every test; `make demo` mirrors the
# bundled fake API into demo.db and shows a few SQL answers.

VERSION    := 0.1.0
PREFIX     ?= /usr/local
BINDIR     ?= $(PREFIX)/bin
SBINDIR    ?= $(PREFIX)/sbin
MANDIR     ?= $(PREFIX)/share/man
SYSCONFDIR ?= /etc
UNITDIR    ?= $(PREFIX)/lib/systemd/system
SYSUSERSDIR ?= $(PREFIX)/lib/sysusers.d
TMPFILESDIR ?= $(PREFIX)/lib/tmpfiles.d
DESTDIR    ?=

CC      ?= cc
PKGS    := libcurl libcjson sqlite3 inih libpq
WARN    := -Wall -Wextra -Wshadow -Wmissing-prototypes -Wcast-qual \
           -Wsign-compare -Wformat=2 -Wstrict-prototypes
OPT     ?= -O2 -g
ifeq ($(CI),true)
WERROR  ?= -Werror
endif
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lev -lm
FINAL_CFLAGS = -std=c11 -D_GNU_SOURCE $(WARN) $(WERROR) $(OPT) $(CPPFLAGS) $(CFLAGS) \
               $(PKG_CFLAGS) -DAGENTSYNCD_VERSION='"$(VERSION)"' \
               -DSYSCONFDIR='"$(SYSCONFDIR)"' -I$(BUILD) -Idaemon
FINAL_LDFLAGS = $(LDFLAGS)
FINAL_LIBS    = $(PKG_LIBS) $(LIBS)

BUILD   ?= build
DAEMON_SRC := $(filter-out daemon/main.c,$(wildcard daemon/*.c))
DAEMON_OBJ := $(DAEMON_SRC:daemon/%.c=$(BUILD)/%.o)
MIGRATIONS := $(sort $(wildcard migrations/*.sql))
PG_MIGRATIONS := $(sort $(wildcard migrations/postgresql/*.sql))
UNIT_SRC   := $(wildcard tests/unit/test_*.c)
UNIT_BIN   := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)

ifeq ($(V),1)
Q :=
else
Q := @
endif

.PHONY: all deps pkgcheck test unit unit-bin integration demo clean install \
        uninstall format lint check-asan check-reliability bench fuzz \
        deb check-systemd check-postgres

all: agentsyncd

deps:
	$(Q)sh scripts/deps.sh

# cp + mv: a copy that is running (a test's daemon) does not block a rebuild.
agentsyncd: $(BUILD)/agentsyncd
	$(Q)cp $< $@.tmp && mv -f $@.tmp $@

$(BUILD)/agentsyncd: $(BUILD)/main.o $(DAEMON_OBJ)
	@echo "  LD      $@"
	$(Q)$(CC) $(FINAL_CFLAGS) $(FINAL_LDFLAGS) -o $@ $^ $(FINAL_LIBS)

# A missing library fails the build with its name and its Debian package,
# not with a missing header half way through.  (libev has no .pc file.)
PKG_DEBIAN := libcurl:libcurl4-openssl-dev libcjson:libcjson-dev \
              sqlite3:libsqlite3-dev inih:libinih-dev libpq:libpq-dev
pkgcheck:
	@missing=""; for pd in $(PKG_DEBIAN); do \
	    pkg-config --exists $${pd%%:*} 2>/dev/null || \
	        missing="$$missing $${pd#*:}"; \
	done; \
	echo '#include <ev.h>' | $(CC) -E -x c - >/dev/null 2>&1 || \
	    missing="$$missing libev-dev"; \
	command -v pkg-config >/dev/null || missing="pkg-config$$missing"; \
	if [ -n "$$missing" ]; then \
	    echo "agentsyncd: missing Debian packages:$$missing" >&2; \
	    echo "agentsyncd: run: make deps (or apt-get install$$missing)" >&2; \
	    exit 1; \
	fi

$(BUILD)/%.o: daemon/%.c | $(BUILD)/migrations.h $(BUILD)/pg_migrations.h pkgcheck
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	$(Q)$(CC) $(FINAL_CFLAGS) -MMD -MP -c -o $@ $<

# Migrations are compiled into the binary: an installed daemon needs no files.
$(BUILD)/migrations.h: $(MIGRATIONS) scripts/embed-migrations.sh
	@mkdir -p $(BUILD)
	@echo "  GEN     $@"
	$(Q)sh scripts/embed-migrations.sh $(MIGRATIONS) > $@.tmp && mv $@.tmp $@

# PostgreSQL's, numbered as the contract versions they reach (store_pg.c).
$(BUILD)/pg_migrations.h: $(PG_MIGRATIONS) scripts/embed-migrations.sh
	@mkdir -p $(BUILD)
	@echo "  GEN     $@"
	$(Q)sh scripts/embed-migrations.sh --postgresql $(PG_MIGRATIONS) \
	    > $@.tmp && mv $@.tmp $@

$(BUILD)/tests/%: tests/unit/%.c $(DAEMON_OBJ)
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	$(Q)$(CC) $(FINAL_CFLAGS) -Itests/unit -o $@ $^ $(FINAL_LIBS) -lcmocka

# A third API, in tests/ only, with this build's own adapter table instead
# of daemon/adapters.c: an adapter is one file and one table entry.
# Its typed columns are its fields[] and one migration, third.sql, which
# this build alone embeds after the daemon's own (numbered next).
THIRD_MIG := $(BUILD)/third/$(shell printf '%04d' \
               $$(($(words $(MIGRATIONS)) + 1)))_third.sql
$(THIRD_MIG): tests/unit/third/third.sql
	@mkdir -p $(dir $@)
	$(Q)cp $< $@
$(BUILD)/third/migrations.h: $(MIGRATIONS) $(THIRD_MIG) \
    scripts/embed-migrations.sh
	@echo "  GEN     $@"
	$(Q)sh scripts/embed-migrations.sh $(MIGRATIONS) $(THIRD_MIG) \
	    > $@.tmp && mv $@.tmp $@
$(BUILD)/third/store_sqlite.o: daemon/store_sqlite.c \
    $(BUILD)/third/migrations.h | pkgcheck
	@echo "  CC      $< (third)"
	$(Q)$(CC) -I$(BUILD)/third $(FINAL_CFLAGS) -MMD -MP -c -o $@ $<
-include $(BUILD)/third/store_sqlite.d
$(BUILD)/tests/test_third_adapter: tests/unit/test_third_adapter.c \
    tests/unit/third/third.c $(BUILD)/third/store_sqlite.o \
    $(filter-out $(BUILD)/adapters.o $(BUILD)/store_sqlite.o,$(DAEMON_OBJ))
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	$(Q)$(CC) $(FINAL_CFLAGS) -Itests/unit -o $@ $^ $(FINAL_LIBS) -lcmocka

# Reload equality key by key: a change of type between two adapters that
# both refuse org_id needs the third one.
$(BUILD)/tests/test_conf_same: tests/unit/test_conf_same.c \
    tests/unit/third/third.c $(filter-out $(BUILD)/adapters.o,$(DAEMON_OBJ))
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	$(Q)$(CC) $(FINAL_CFLAGS) -Itests/unit -o $@ $^ $(FINAL_LIBS) -lcmocka

# The writer against a fake store (the test defines store_*): linked
# without libev, libcurl or SQLite, which proves it needs none of them.
$(BUILD)/tests/test_writer: tests/unit/test_writer.c $(BUILD)/writer.o
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	$(Q)$(CC) $(FINAL_CFLAGS) -Itests/unit -o $@ $^ -lcmocka

# A pure module: linked alone, without libev, libcurl or SQLite.
$(BUILD)/tests/test_verdict: tests/unit/test_verdict.c $(BUILD)/verdict.o
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	$(Q)$(CC) $(FINAL_CFLAGS) -Itests/unit -o $@ $^ -lcmocka

# What every storage engine decides alike: store_rules.o alone (the test
# defines log_warnx), without SQLite, libev or libcurl.
$(BUILD)/tests/test_store_rules: tests/unit/test_store_rules.c \
    $(BUILD)/store_rules.o
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	$(Q)$(CC) $(FINAL_CFLAGS) -Itests/unit -o $@ $^ -lcmocka

# The request pipeline: pure, linked alone.
$(BUILD)/tests/test_pipeline: tests/unit/test_pipeline.c $(BUILD)/pipeline.o
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	$(Q)$(CC) $(FINAL_CFLAGS) -Itests/unit -o $@ $^ -lcmocka

# The page parser and the adapters: linked with cJSON alone, without
# libev, libcurl or SQLite.
JSON_OBJ := $(addprefix $(BUILD)/,json.o json_fields.o json_item.o json_run.o source.o \
              adapters.o codegen.o cotool.o)
$(BUILD)/tests/test_json_fields: tests/unit/test_json_fields.c $(JSON_OBJ)
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	$(Q)$(CC) $(FINAL_CFLAGS) -Itests/unit -o $@ $^ \
	    $(shell pkg-config --libs libcjson) -lm -lcmocka

# The adapters' typed columns, merged and checked: the page parser, the
# adapters and store_columns.c alone (no SQLite).
$(BUILD)/tests/test_store_columns: tests/unit/test_store_columns.c \
    $(JSON_OBJ) $(BUILD)/store_columns.o $(BUILD)/buf.o
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	$(Q)$(CC) $(FINAL_CFLAGS) -Itests/unit -o $@ $^ \
	    $(shell pkg-config --libs libcjson) -lm -lcmocka

# Allocation failures injected by wrapping calloc (a reload that runs out
# of memory must leave the running configuration whole).
$(BUILD)/tests/test_sync: tests/unit/test_sync.c $(DAEMON_OBJ)
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	$(Q)$(CC) $(FINAL_CFLAGS) -Itests/unit -Wl,--wrap=calloc -o $@ $^ \
	    $(FINAL_LIBS) -lcmocka

unit-bin: $(UNIT_BIN)

$(BUILD)/floor: tests/bench/floor.c $(DAEMON_OBJ)
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	$(Q)$(CC) $(FINAL_CFLAGS) -o $@ $^ $(FINAL_LIBS)

# One page through its adapter: parse time and the resident memory it
# takes, for the hostile-pages rows of make bench.
$(BUILD)/hostile: tests/bench/hostile.c $(DAEMON_OBJ)
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	$(Q)$(CC) $(FINAL_CFLAGS) -o $@ $^ $(FINAL_LIBS)

# libFuzzer harnesses (clang): make fuzz FUZZ_SECONDS=60
FUZZ_SECONDS ?= 10
FUZZ_CFLAGS = -std=c11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined \
	-Ibuild -Idaemon $(PKG_CFLAGS) -DAGENTSYNCD_VERSION='"$(VERSION)"' \
	-DSYSCONFDIR='"$(SYSCONFDIR)"'
FUZZ_SRC = $(filter-out daemon/main.c,$(wildcard daemon/*.c))

build-fuzz/%: tests/fuzz/%.c $(FUZZ_SRC) $(BUILD)/migrations.h \
    $(BUILD)/pg_migrations.h
	@mkdir -p build-fuzz
	@echo "  FUZZ    $@"
	$(Q)clang $(FUZZ_CFLAGS) -o $@ $< $(FUZZ_SRC) $(PKG_LIBS)

fuzz: build-fuzz/fuzz_pages build-fuzz/fuzz_conf
	@mkdir -p build-fuzz/corpus-pages build-fuzz/corpus-conf
	build-fuzz/fuzz_pages -max_total_time=$(FUZZ_SECONDS) -max_len=65536 \
	    -print_final_stats=1 build-fuzz/corpus-pages tests/fuzz/corpus/pages
	build-fuzz/fuzz_conf -max_total_time=$(FUZZ_SECONDS) -max_len=4096 \
	    -print_final_stats=1 build-fuzz/corpus-conf tests/fuzz/corpus/conf

# Figures side by side, measured in one run; see README "Performance".
# BENCH_SCALES="10000 100000 1000000" adds the 1M-run scale (minutes).
bench:
	$(Q)sh scripts/deps.sh sqlite-utils valgrind postgresql postgresql-client
	$(Q)$(MAKE) --no-print-directory agentsyncd $(BUILD)/floor $(BUILD)/hostile
	$(Q)python3 scripts/bench.py $(BUILD)

test: deps
	$(Q)$(MAKE) --no-print-directory agentsyncd unit-bin
	$(Q)sh tests/run.sh $(BUILD)

unit: agentsyncd unit-bin
	$(Q)sh tests/run.sh $(BUILD) unit

integration: agentsyncd
	$(Q)sh tests/run.sh $(BUILD) integration

check-asan:
	$(Q)$(MAKE) --no-print-directory BUILD=build-asan CC=clang \
	    OPT="-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all" \
	    LDFLAGS="-fsanitize=address,undefined" build-asan/agentsyncd unit-bin
	$(Q)AGENTSYNCD_BIN=build-asan/agentsyncd sh tests/run.sh build-asan

# Crashes, faults, bad input, concurrency and security, one row of figures
# a case (README "Reliability").  RELIABILITY_ARGS="-k crash" picks cases.
check-reliability:
	$(Q)sh scripts/deps.sh valgrind strace openssl
	$(Q)$(MAKE) --no-print-directory agentsyncd
	$(Q)python3 tests/runtests.py $(BUILD) reliability $(RELIABILITY_ARGS)

demo: deps
	$(Q)$(MAKE) --no-print-directory agentsyncd
	$(Q)sh scripts/demo.sh

install: $(BUILD)/agentsyncd
	install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(MANDIR)/man8 \
	    $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(MANDIR)/man7 \
	    $(DESTDIR)$(SYSCONFDIR)/agentsyncd \
	    $(DESTDIR)$(UNITDIR) $(DESTDIR)$(SYSUSERSDIR) $(DESTDIR)$(TMPFILESDIR)
	install -m 0755 $(BUILD)/agentsyncd $(DESTDIR)$(SBINDIR)/agentsyncd
	install -m 0644 doc/agentsyncd.8 $(DESTDIR)$(MANDIR)/man8/agentsyncd.8
	install -m 0644 doc/agentsyncd.conf.5 $(DESTDIR)$(MANDIR)/man5/agentsyncd.conf.5
	install -m 0644 doc/agentsyncd-schema.7 $(DESTDIR)$(MANDIR)/man7/agentsyncd-schema.7
	sed 's|@SBINDIR@|$(SBINDIR)|g' contrib/systemd/agentsyncd.service \
	    > $(DESTDIR)$(UNITDIR)/agentsyncd.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/agentsyncd.service
	install -m 0644 contrib/systemd/agentsyncd.sysusers $(DESTDIR)$(SYSUSERSDIR)/agentsyncd.conf
	install -m 0644 contrib/systemd/agentsyncd.tmpfiles $(DESTDIR)$(TMPFILESDIR)/agentsyncd.conf
	@# The service's user reads the configuration, nobody else does: it
	@# is agentsyncd's 0600 now if the user exists, else once
	@# systemd-sysusers made it (systemd-tmpfiles --create applies the
	@# tmpfiles.d line that says so).
	@conf=$(DESTDIR)$(SYSCONFDIR)/agentsyncd/agentsyncd.conf; \
	if [ -e $$conf ]; then \
	    echo "keeping existing $$conf"; \
	else \
	    echo "install -m 0600 agentsyncd.conf $$conf"; \
	    install -m 0600 agentsyncd.conf $$conf; \
	fi; \
	if [ -z "$(DESTDIR)" ] && [ "$$(id -u)" -eq 0 ] && \
	    getent passwd agentsyncd >/dev/null; then \
	    echo "chown agentsyncd:root $$conf"; \
	    chown agentsyncd:root $$conf; \
	fi

uninstall:
	rm -f $(DESTDIR)$(SBINDIR)/agentsyncd \
	    $(DESTDIR)$(MANDIR)/man8/agentsyncd.8 \
	    $(DESTDIR)$(MANDIR)/man5/agentsyncd.conf.5 \
	    $(DESTDIR)$(MANDIR)/man7/agentsyncd-schema.7 \
	    $(DESTDIR)$(UNITDIR)/agentsyncd.service \
	    $(DESTDIR)$(SYSUSERSDIR)/agentsyncd.conf \
	    $(DESTDIR)$(TMPFILESDIR)/agentsyncd.conf
	@echo "left $(DESTDIR)$(SYSCONFDIR)/agentsyncd/agentsyncd.conf and the database in place"

# The Debian package, built from a clean copy of the tree in build-deb/
# (dpkg-buildpackage writes beside the source): build-deb/agentsyncd_*.deb,
# checked with lintian.
deb:
	$(Q)sh scripts/deps.sh debhelper dpkg-dev fakeroot lintian
	$(Q)rm -rf build-deb && mkdir -p build-deb/src
	$(Q)tar -cf - --exclude=./.git --exclude='./build*' --exclude=./agentsyncd \
	    --exclude='./demo.db*' . | tar -xf - -C build-deb/src
	$(Q)cd build-deb/src && dpkg-buildpackage -us -uc -b >../build.log 2>&1 || \
	    { tail -30 ../build.log; exit 1; }
	$(Q)ls build-deb/*.deb
	$(Q)lintian --fail-on error --info build-deb/*.changes

# The PostgreSQL engine: the core integration tests on both engines, its
# own tests and faults, against a throwaway cluster (initdb into a
# temporary directory as an unprivileged user, a free loopback port); a
# table of what it checked.  CHECK_POSTGRES_ARGS="-k backfill" picks.
check-postgres:
	$(Q)sh scripts/deps.sh postgresql postgresql-client
	$(Q)$(MAKE) --no-print-directory agentsyncd $(BUILD)/tests/test_store_pg_claim
	$(Q)python3 tests/check_postgres.py $(CHECK_POSTGRES_ARGS)

# README "Operations" under a real systemd 252 in Debian 12 containers,
# from source and from the .deb (tests/systemd/); needs root.
check-systemd:
	$(Q)sh scripts/deps.sh debootstrap systemd-container
	$(Q)$(MAKE) --no-print-directory deb
	$(Q)bash tests/systemd/run.sh

# .clang-format is the house style: `make format` rewrites, `make lint`
# fails on any file it would change.
FORMAT_C = daemon/*.c daemon/*.h tests/unit/*.c tests/unit/*.h \
           tests/unit/third/*.c tests/bench/*.c tests/fuzz/*.c
format:
	clang-format -i $(FORMAT_C)

# cppcheck and clang-tidy (checks in .clang-tidy) over daemon/ and tests/ C.
LINT_C = daemon/*.c tests/unit/*.c tests/unit/third/*.c tests/bench/*.c \
         tests/fuzz/*.c
lint: $(BUILD)/migrations.h $(BUILD)/pg_migrations.h
	$(Q)sh scripts/deps.sh cppcheck clang-tidy
	cppcheck --quiet --enable=warning,performance,portability --error-exitcode=1 \
	    --suppress=missingIncludeSystem -Idaemon -I$(BUILD) -Itests/unit \
	    daemon tests/unit tests/bench tests/fuzz
	clang-format --dry-run --Werror $(FORMAT_C)
	clang-tidy --quiet $(LINT_C) -- -std=c11 -D_GNU_SOURCE -I$(BUILD) \
	    -Idaemon -Itests/unit $(PKG_CFLAGS) -DAGENTSYNCD_VERSION='"lint"' \
	    -DSYSCONFDIR='"/etc"' -include tests/unit/lint_cmocka.h
	$(Q)sh scripts/spdx.sh

clean:
	rm -rf build build-asan build-fuzz build-deb build-debpkg agentsyncd \
	    demo.db demo.db-wal demo.db-shm

-include $(wildcard $(BUILD)/*.d)
