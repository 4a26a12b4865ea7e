/*-------------------------------------------------------------------------
 *
 * client_test.h
 *		  Harness, configuration and helpers shared by the client library
 *		  tests (the .c files of test/client), which run against the API
 *		  emulator.
 *
 * The tests are split by area:
 *
 *	main.c				the order the tests run in, and main()
 *	harness.c			result lines, CHECK, helpers declared below
 *	test_api.c			method table, list requests/pages, validators (no
 *						emulator needed)
 *	test_init.c			options and gRPC initialisation (before any channel)
 *	test_calls.c		calls, decoding, paging, service errors, request ids
 *	test_faults.c		injected faults, deadlines, local errors, recovery
 *						after an outage
 *	test_concurrency.c	give-up, calls in flight, wait_any, abandon/close,
 *						signals, fork
 *	test_tls.c			TLS
 *	test_clusters.c		ClusterService.List and Get: filter, pages, fields,
 *						NOT_FOUND, NUL in a Cluster's strings
 *
 * Run through test/client/run.sh, which starts the emulators and passes
 * their addresses in the environment:
 *
 *	RB_TEST_PLAIN_TARGET	host:port of the plaintext emulator (test data
 *							from client_test.tsv, folder "gen" of 2500
 *							generated backups, tokens, faults, call log)
 *	RB_TEST_TLS_PORT		port of the TLS emulator (cert for "localhost")
 *	RB_TEST_CA_FILE			CA that signed the TLS emulator's certificate
 *	RB_TEST_OTHER_CA_FILE	an unrelated CA
 *	RB_TEST_LOG_FILE		the plaintext emulator's JSON call log
 *	RB_TEST_EMULATOR		the emulator program (tests that start their own)
 *	RB_TEST_DATA			client_test.tsv
 *	RB_TEST_SLOW			non-empty: relax time limits and skip the
 *							/proc signal-mask check (valgrind)
 *
 * Prints one line per test, "ok N - name" or "not ok N - name: reason",
 * then "P passed, F failed"; exits 1 when any test failed.
 *
 * test/client/client_test.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef CLIENT_TEST_H
#define CLIENT_TEST_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "rb_client.h"

typedef Yandex__Cloud__Mdb__Redis__V1__Backup Backup;
typedef Yandex__Cloud__Mdb__Redis__V1__GetBackupRequest GetBackupRequest;
typedef Yandex__Cloud__Mdb__Redis__V1__ListBackupsRequest ListBackupsRequest;
typedef Yandex__Cloud__Mdb__Redis__V1__ListBackupsResponse ListBackupsResponse;
typedef Yandex__Cloud__Mdb__Redis__V1__ListClusterBackupsRequest ListClusterBackupsRequest;
typedef Yandex__Cloud__Mdb__Redis__V1__ListClusterBackupsResponse ListClusterBackupsResponse;
typedef Yandex__Cloud__Resourcemanager__V1__Folder Folder;
typedef Yandex__Cloud__Resourcemanager__V1__ListFoldersRequest ListFoldersRequest;
typedef Yandex__Cloud__Resourcemanager__V1__ListFoldersResponse ListFoldersResponse;

#define TOKEN_ALL "tok-all"			/* granted every folder */
#define TOKEN_A "tok-a"				/* granted folder-a only */
#define CALL_TIMEOUT_MS 10000

/* ----------------------------------------------------------------------
 * Harness (harness.c)
 * ----------------------------------------------------------------------
 */

/* Has the current test failed? */
extern bool cur_failed;

/* Record the first failure of the current test. */
extern void fail_at(const char *file, int line, const char *fmt,...)
			__attribute__((format(printf, 3, 4)));

#define FAIL(...) fail_at(__FILE__, __LINE__, __VA_ARGS__)

/* On failure: record it and leave the test function. */
#define CHECK(cond, ...) \
	do { \
		if (!(cond)) \
		{ \
			FAIL(__VA_ARGS__); \
			return; \
		} \
	} while (0)

#define CHECK_CODE(st, want) \
	CHECK((st).code == (want), "expected %s, got %s (%s)", \
		  rb_code_name(want), rb_code_name((st).code), (st).message)

/* Get a backup with the all-folders token and check it with checker. */
#define CHECK_GET(ch, id, checker) \
	do { \
		Backup	   *b_ = do_get((ch), TOKEN_ALL, (id), &st); \
		const char *m_; \
		CHECK_CODE(st, RB_OK); \
		m_ = checker(b_); \
		free_msg(b_); \
		CHECK(m_ == NULL, "%s", m_); \
	} while (0)

/* Run one test function and print its result line. */
extern void run_test(const char *name, void (*fn) (void));

/* Print the summary line; the exit status of the program. */
extern int	report_results(void);

/* ----------------------------------------------------------------------
 * Configuration from the environment (set by main)
 * ----------------------------------------------------------------------
 */
extern const char *plain_target;
extern char tls_name_target[64];
extern char tls_ip_target[64];
extern char *ca_pem;
extern char *other_ca_pem;
extern const char *log_file;
extern const char *emulator_program;
extern const char *data_file;
extern int	slow;				/* time limit multiplier */

/* ----------------------------------------------------------------------
 * Helpers (harness.c)
 * ----------------------------------------------------------------------
 */
extern int64_t now_ms(void);
extern bool wait_child(pid_t pid, int64_t timeout_ms, int *wstatus);
extern bool child_succeeded(pid_t pid, int64_t timeout_ms, const char *codes);
extern char *read_file(const char *path);
extern int	count_threads(void);
extern const char *sort_find_duplicate(char **ids, size_t n);
extern void free_strings(char **strings, size_t n);

extern RbChannel *open_plain(int max_receive_bytes, RbStatus *st);
extern RbChannel *open_plain_to(const char *target, RbStatus *st);
extern RbChannel *open_tls(const char *target, const char *ca, RbStatus *st);

/* Request builders.  The structs live in the caller's frame. */
extern void make_get(GetBackupRequest *req, const char *id);
extern void make_list(ListBackupsRequest *req, const char *folder,
					  int64_t page_size, const char *page_token);
extern void make_cluster_list(ListClusterBackupsRequest *req,
							  const char *cluster, int64_t page_size,
							  const char *page_token);

/* One-shot calls with the default allocator. */
extern Backup *do_get(RbChannel *ch, const char *token, const char *id,
					  RbStatus *st);
extern ListBackupsResponse *do_list(RbChannel *ch, const char *token,
									const char *folder, int64_t page_size,
									const char *page_token, RbStatus *st,
									size_t *bytes);
extern ListClusterBackupsResponse *do_cluster_list(RbChannel *ch,
												   const char *token,
												   const char *cluster,
												   int64_t page_size,
												   const char *page_token,
												   RbStatus *st);
extern void free_msg(void *msg);

/* NULL when the values match; else a description. */
extern const char *ts_mismatch(const Google__Protobuf__Timestamp *ts,
							   bool set, int64_t seconds, int32_t nanos);
extern const char *backup_mismatch(const Backup *b, const char *id,
								   const char *folder, const char *cluster,
								   int64_t cs, int32_t cn, int64_t ss,
								   int32_t sn, const char *shards, int type);
extern const char *check_b_a1(const Backup *b);
extern const char *check_b_a2(const Backup *b);
extern const char *check_b_a3(const Backup *b);
extern const char *check_b_a4(const Backup *b);
extern const char *check_b_b1(const Backup *b);
extern const char *check_folder_a(Backup **backups, size_t n);

extern bool is_uuid_v4(const char *s);

/* The emulator's call log. */
extern char *log_line(const char *client_request_id);
extern bool log_has(const char *line, const char *key, const char *raw_value);
extern bool check_logged(const RbStatus *st, const char *key,
						 const char *raw_value);

/* ----------------------------------------------------------------------
 * Tests, by file
 * ----------------------------------------------------------------------
 */

/* test_init.c: must run before gRPC is initialised in this process */
extern void test_bad_options(void);
extern void test_fork_before_init(void);
extern void test_grpc_log_hides_token(void);
extern void test_lazy_init(void);

/* test_clusters.c */
extern void test_cluster_filter_request(void);
extern void test_cluster_reply_strings(void);
extern void test_operation_reply_strings(void);
extern void test_clusters_list(void);
extern void test_clusters_get(void);

/* test_api.c */
extern void test_names(void);
extern void test_method_table(void);
extern void test_validators(void);
extern void test_idempotency_key_rules(void);
extern void test_list_request(void);
extern void test_list_reply_page(void);
extern void test_new_reply_strings(void);

/* test_calls.c */
extern void test_get(void);
extern void test_get_odd_values(void);
extern void test_list(void);
extern void test_cluster_list(void);
extern void test_allocator(void);
extern void test_paging(void);
extern void test_default_page_size(void);
extern void test_cluster_paging(void);
extern void test_list_page_api(void);
extern void test_validation(void);
extern void test_auth(void);
extern void test_request_ids(void);
extern void test_idempotency_key_sent(void);

/* test_faults.c */
extern void test_fault_latency(void);
extern void test_fault_unavailable(void);
extern void test_fault_exhausted(void);
extern void test_fault_status(void);
extern void test_fault_garbage(void);
extern void test_hostile_strings(void);
extern void test_fault_token_loop(void);
extern void test_fault_unknown_fields(void);
extern void test_fault_oversize(void);
extern void test_deadline(void);
extern void test_local_errors(void);
extern void test_reconnect_after_outage(void);

/* test_concurrency.c */
extern void test_give_up(void);
extern void test_concurrent(void);
extern void test_wait_any(void);
extern void test_wait_any_abandoned(void);
extern void test_wait_any_give_up(void);
extern void test_wait_any_empty(void);
extern void test_abandon_and_close(void);
extern void test_signals(void);
extern void test_fork_after_init(void);

/* test_deferred.c */
extern void test_wait_any_for(void);
extern void test_deferred_decoding(void);

/* test_tls.c */
extern void test_tls_ok(void);
extern void test_tls_wrong_ca(void);
extern void test_tls_name_mismatch(void);
extern void test_plaintext_to_tls(void);

#endif							/* CLIENT_TEST_H */
