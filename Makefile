# redis_backup_fdw: PostgreSQL foreign data wrapper for Yandex Cloud
# Managed Redis backups.  Built with PGXS.

EXTENSION = redis_backup_fdw
MODULE_big = redis_backup_fdw
# The version is written once, in the control file; the code gets it as
# RB_VERSION (user agent) and the install script is named after it.
EXTVERSION = $(shell sed -n "s/^default_version *= *'\\(.*\\)'/\\1/p" $(srcdir)/$(EXTENSION).control)
DATA = $(EXTENSION)--$(EXTVERSION).sql
PGFILEDESC = "redis_backup_fdw - foreign data wrapper for Managed Redis backups"

REGRESS = $(patsubst sql/%.sql,%,$(sort $(wildcard sql/*.sql)))
REGRESS_OPTS = --inputdir=. --outputdir=.regress

# Generated protobuf-c code (never committed; see .gitignore).
GEN = gen
PROTOS = yandex/cloud/mdb/redis/v1/backup.proto \
         yandex/cloud/mdb/redis/v1/backup_service.proto \
         yandex/cloud/mdb/redis/v1/cluster.proto \
         yandex/cloud/mdb/redis/v1/cluster_service.proto \
         google/type/timeofday.proto \
         yandex/cloud/iam/v1/iam_token_service.proto \
         yandex/cloud/resourcemanager/v1/folder.proto \
         yandex/cloud/resourcemanager/v1/folder_service.proto \
         yandex/cloud/operation/operation.proto \
         yandex/cloud/operation/operation_service.proto \
         google/rpc/status.proto
# Well-known types generated from protobuf's own copies (PROTO_INCLUDE).
SYSTEM_PROTOS = google/protobuf/timestamp.proto google/protobuf/wrappers.proto \
                google/protobuf/any.proto google/protobuf/empty.proto
PROTO_C = $(addprefix $(GEN)/,$(PROTOS:.proto=.pb-c.c) $(SYSTEM_PROTOS:.proto=.pb-c.c))
PROTO_OBJS = $(PROTO_C:.c=.o)
PROTO_INCLUDE = $(shell pkg-config --variable=includedir protobuf 2>/dev/null || echo /usr/include)

CLIENT_OBJS = src/client/rb_client.o src/client/rb_wire.o

OBJS = redis_backup_fdw.o \
       src/option.o \
       src/server_file.o \
       src/field.o \
       src/credentials.o \
       src/jwt.o \
       src/metadata.o \
       src/fetch.o \
       src/connection.o \
       src/pushdown.o \
       src/convert.o \
       src/remote.o \
       src/mutate.o \
       src/modify.o \
       $(CLIENT_OBJS) \
       $(PROTO_OBJS)

# WERROR=1 turns warnings into errors (CI does); off by default.
WERROR_FLAG = $(if $(filter 1 yes true,$(WERROR)),-Werror)
VERSION_FLAG = -DRB_VERSION='"$(EXTVERSION)"'

PG_CPPFLAGS = -I$(GEN) -I$(srcdir)/src -I$(srcdir)/src/client $(VERSION_FLAG)
PG_CFLAGS = $(WERROR_FLAG)
SHLIB_LINK = -lgrpc -lgpr -lprotobuf-c -lcrypto -lcurl

EXTRA_CLEAN = $(GEN) .regress test/emulator/redis_backup_emulator \
              test/client/client_test test/emulator/*.o test/client/*.o \
              bench/list_all

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# Every object needs the generated headers first, and is rebuilt when a
# header of ours changes (PGXS tracks no header dependencies).
# The same for the JIT bitcode PGXS compiles from each source when the
# server was built with LLVM (the .bc files are built beside the objects,
# in parallel with them under make -j).
$(OBJS) $(OBJS:.o=.bc): $(GEN)/.stamp $(srcdir)/src/redis_backup_fdw.h \
         $(srcdir)/src/compat.h $(srcdir)/src/client/rb_client.h \
         $(srcdir)/src/client/rb_wire.h

# Made anew when a .proto or the lists above (this Makefile) change.
$(GEN)/.stamp: $(addprefix proto/,$(PROTOS)) $(srcdir)/Makefile
	@mkdir -p $(GEN) src/client
	protoc-c --c_out=$(GEN) -I$(srcdir)/proto -I$(PROTO_INCLUDE) $(PROTOS) $(SYSTEM_PROTOS)
	@touch $@

$(PROTO_C): $(GEN)/.stamp

# PostgreSQL 18 compiles with -Wmissing-variable-declarations, which the
# tables protoc-c generates (defined without an extern declaration) trip.
$(PROTO_OBJS): override CFLAGS := $(filter-out -Wmissing-variable-declarations,$(CFLAGS))

# The regression tests run against the API emulator, whose addresses
# scripts/test.sh exports (scripts/lib.sh, start_regress_emulators).
REGRESS_ENV = RBFDW_EMULATOR_ADDR RBFDW_EMULATOR_LOG RBFDW_EMULATOR_TLS_ADDR \
              RBFDW_EMULATOR_TLS_IP_ADDR RBFDW_CA_FILE RBFDW_UNTRUSTED_CA_FILE \
              RBFDW_PG_LOG RBFDW_METADATA_ADDR RBFDW_SHORT_ADDR \
              RBFDW_SHORT_METADATA_ADDR RBFDW_IAM_BEHIND_ADDR RBFDW_IAM_AHEAD_ADDR \
              RBFDW_SA_KEY_FILE RBFDW_SA_KEY_UNKNOWN_FILE RBFDW_SA_KEY_FORGED_FILE \
              RBFDW_SA_KEY_HANG_FILE RBFDW_SA_KEY_ROTATED_FILE RBFDW_SA_KEY_SLOT_FILE \
              RBFDW_SLOW_METADATA_ADDR RBFDW_SA_KEY_RSA512_FILE RBFDW_SA_KEY_RSA1024_FILE \
              RBFDW_SA_KEY_SWAP_FILE RBFDW_SA_KEY_FIFO RBFDW_QUOTA_ADDR RBFDW_QUOTA_LOG
installcheck: | .regress regress-env
.regress:
	@mkdir -p .regress
regress-env:
	@for v in $(REGRESS_ENV); do \
	  if [ -z "$$(printenv $$v)" ]; then \
	    echo "make installcheck: $$v is not set: the tests need the API emulator." >&2; \
	    echo "Run bash scripts/test.sh (it starts PostgreSQL and the emulators, then runs make installcheck)." >&2; \
	    exit 1; \
	  fi; \
	done
.PHONY: regress-env

# ---------------------------------------------------------------------------
# Test programs: the API emulator and the client tests.  Plain C, no
# PostgreSQL headers; they share the client library and generated code.
# ---------------------------------------------------------------------------
TEST_CFLAGS = -O2 -g -Wall -Wextra -Wno-unused-parameter $(WERROR_FLAG) $(VERSION_FLAG) -I$(GEN) -Isrc/client
TEST_LIBS = -lgrpc -lgpr -lprotobuf-c -lpthread

EMULATOR_SRCS = $(sort $(wildcard test/emulator/*.c))
CLIENT_TEST_SRCS = $(sort $(wildcard test/client/*.c))

test-programs: test/emulator/redis_backup_emulator test/client/client_test \
               test/emulator/selfcheck/client

test/emulator/redis_backup_emulator: $(EMULATOR_SRCS) $(wildcard test/emulator/*.h) $(PROTO_C) $(GEN)/.stamp
	$(CC) $(TEST_CFLAGS) -o $@ $(EMULATOR_SRCS) $(PROTO_C) $(TEST_LIBS) -lcrypto -lm

CLIENT_SRCS = src/client/rb_client.c src/client/rb_wire.c

test/client/client_test: $(CLIENT_TEST_SRCS) $(CLIENT_SRCS) src/client/rb_client.h src/client/rb_wire.h $(PROTO_C) $(GEN)/.stamp
	$(CC) $(TEST_CFLAGS) -o $@ $(CLIENT_TEST_SRCS) $(CLIENT_SRCS) $(PROTO_C) $(TEST_LIBS)

.PHONY: test-programs

# --- emulator self-check (test/emulator/selfcheck.sh) ----------------------
test/emulator/selfcheck/client: test/emulator/selfcheck/client.c $(PROTO_C) $(GEN)/.stamp
	$(CC) $(TEST_CFLAGS) -o $@ test/emulator/selfcheck/client.c $(PROTO_C) $(TEST_LIBS)

EXTRA_CLEAN += test/emulator/selfcheck/client
# --- end of emulator self-check ---------------------------------------------

# Benchmark baseline (bench/scan_bench.sh).
bench/list_all: bench/list_all.c $(CLIENT_SRCS) src/client/rb_client.h $(PROTO_C) $(GEN)/.stamp
	$(CC) $(TEST_CFLAGS) -o $@ bench/list_all.c $(CLIENT_SRCS) $(PROTO_C) $(TEST_LIBS)

# ---------------------------------------------------------------------------
# Fuzzing (test/fuzz, see test/fuzz/README.md): a libFuzzer target for the
# decoding of replies, rb_decode_reply() in src/client/rb_wire.c, and the
# generator of its seed corpus.  Needs clang with its sanitizer and libFuzzer
# runtimes (Debian 12: clang, libclang-rt-14-dev).  Run: test/fuzz/run.sh.
#
# test/fuzz/fuzz_reply links the system libprotobuf-c, as the FDW does.
# test/fuzz/fuzz_reply_pbc compiles protobuf-c in, instrumented, from
# FUZZ_PROTOBUF_C=/path/to/protobuf-c/protobuf-c.c, which must be the
# installed version (1.4.1 on Debian 12, git tag v1.4.1).  Its shift-base
# check is off: parse_tag_and_wiretype() shifts into the sign bit of an int.
# ---------------------------------------------------------------------------
FUZZ_CC = clang
FUZZ_SANITIZE = -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
FUZZ_CFLAGS = -g -O1 -fno-omit-frame-pointer $(FUZZ_SANITIZE) \
              -Wall -Wextra -Wno-unused-parameter $(WERROR_FLAG) $(VERSION_FLAG) -I$(GEN) -Isrc/client
FUZZ_SRCS = test/fuzz/fuzz_reply.c src/client/rb_wire.c
FUZZ_PROTOBUF_C =

fuzz-programs: test/fuzz/fuzz_reply test/fuzz/make_seeds

test/fuzz/fuzz_reply: $(FUZZ_SRCS) src/client/rb_wire.h $(PROTO_C) $(GEN)/.stamp
	$(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ $(FUZZ_SRCS) $(PROTO_C) -lprotobuf-c

test/fuzz/fuzz_reply_pbc: $(FUZZ_SRCS) src/client/rb_wire.h test/fuzz/protobuf-c.o $(PROTO_C) $(GEN)/.stamp
	$(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ $(FUZZ_SRCS) $(PROTO_C) test/fuzz/protobuf-c.o

test/fuzz/protobuf-c.o: $(FUZZ_PROTOBUF_C)
	@test -n "$(FUZZ_PROTOBUF_C)" || { echo "set FUZZ_PROTOBUF_C to the installed version's protobuf-c/protobuf-c.c" >&2; exit 1; }
	$(FUZZ_CC) -g -O1 -fno-omit-frame-pointer $(FUZZ_SANITIZE) -fno-sanitize=shift-base -c -o $@ $(FUZZ_PROTOBUF_C)

test/fuzz/make_seeds: test/fuzz/make_seeds.c $(PROTO_C) $(GEN)/.stamp
	$(CC) $(TEST_CFLAGS) -o $@ test/fuzz/make_seeds.c $(PROTO_C) -lprotobuf-c

EXTRA_CLEAN += test/fuzz/fuzz_reply test/fuzz/fuzz_reply_pbc \
               test/fuzz/protobuf-c.o test/fuzz/make_seeds

.PHONY: fuzz-programs
# --- end of fuzzing targets -------------------------------------------------

# --- client tests: header dependency (owned by src/client, test/client) ---
test/client/client_test: $(wildcard test/client/*.h)
# --- end of client tests block ----------------------------------------------
