/*-------------------------------------------------------------------------
 *
 * main.c
 *		  The client tests' main(): reads the configuration run.sh passes in
 *		  the environment (see client_test.h) and runs every test in order.
 *
 * test/client/main.c
 *
 *-------------------------------------------------------------------------
 */
#include "client_test.h"

#include <stdlib.h>
#include <string.h>

/* One test: its name in the result line and its function. */
typedef struct TestCase
{
	const char *name;
	void		(*fn) (void);
} TestCase;

/* Every test, in the order they run. */
static const TestCase tests[] = {
	/* These need a process without gRPC state, so they come first. */
	{"bad options refused before gRPC starts", test_bad_options},
	{"fork before gRPC init: child completes a call", test_fork_before_init},
	{"gRPC's own log never shows the token", test_grpc_log_hides_token},
	{"first rb_channel_open initialises gRPC", test_lazy_init},

	/* test_api.c: no emulator needed */
	{"code and method names", test_names},
	{"method table complete and consistent", test_method_table},
	{"exported target, token and CA validators", test_validators},
	{"idempotency keys: uuids only, refused locally", test_idempotency_key_rules},
	{"rb_list_request for every listing method", test_list_request},
	{"rb_list_reply_page on decoded replies", test_list_reply_page},
	{"NUL check covers Folder labels and Timestamp replies", test_new_reply_strings},
	{"list request filter for ClusterService.List only", test_cluster_filter_request},
	{"NUL check covers every string of a Cluster", test_cluster_reply_strings},
	{"NUL check covers every string of an Operation", test_operation_reply_strings},

	/* test_calls.c */
	{"BackupService.Get decodes all fields", test_get},
	{"absent timestamps, no shards, unknown enum", test_get_odd_values},
	{"BackupService.List", test_list},
	{"ClusterService.ListBackups", test_cluster_list},
	{"replies use the caller's allocator", test_allocator},
	{"paging 2500 backups with page_size 1000", test_paging},
	{"page_size 0 gives the default 100", test_default_page_size},
	{"ClusterService.ListBackups paging", test_cluster_paging},
	{"paging through rb_list_request and rb_list_reply_page", test_list_page_api},
	{"validation errors and NOT_FOUND", test_validation},
	{"authentication and permission errors", test_auth},
	{"x-request-id and x-client-request-id", test_request_ids},
	{"idempotency-key sent; the same key, the same operation", test_idempotency_key_sent},

	/* test_clusters.c */
	{"ClusterService.List: paging and filter", test_clusters_list},
	{"ClusterService.Get: fields, NOT_FOUND, NUL in a label", test_clusters_get},

	/* test_faults.c */
	{"fault latency", test_fault_latency},
	{"fault unavailable", test_fault_unavailable},
	{"fault exhausted", test_fault_exhausted},
	{"fault status", test_fault_status},
	{"fault garbage gives BAD_REPLY", test_fault_garbage},
	{"NUL in a string is BAD_REPLY, bad UTF-8 passes", test_hostile_strings},
	{"fault token_loop", test_fault_token_loop},
	{"fault unknown_fields", test_fault_unknown_fields},
	{"fault oversize hits max_receive_bytes", test_fault_oversize},
	{"deadline against hang", test_deadline},

	/* test_concurrency.c */
	{"give-up hook cancels within 0.5 s", test_give_up},
	{"concurrent calls collected out of order", test_concurrent},
	{"wait_any returns each of 12 calls exactly once", test_wait_any},
	{"wait_any never returns abandoned or collected calls", test_wait_any_abandoned},
	{"wait_any give-up returns GAVE_UP and cancels nothing", test_wait_any_give_up},
	{"wait_any on a channel with nothing in flight", test_wait_any_empty},
	{"abandon and close do not hang", test_abandon_and_close},

	/* test_deferred.c */
	{"wait_any_for: a bounded wait, then the call", test_wait_any_for},
	{"replies kept undecoded: token read off the bytes, decoded later", test_deferred_decoding},

	/* test_faults.c */
	{"local errors and unreachable server", test_local_errors},
	{"a channel recovers within 1.5 s after an outage", test_reconnect_after_outage},

	/* test_concurrency.c */
	{"signals go to the main thread only", test_signals},
	{"fork after gRPC init is refused", test_fork_after_init},

	/* test_tls.c */
	{"TLS with the right CA", test_tls_ok},
	{"TLS with a wrong CA fails", test_tls_wrong_ca},
	{"TLS to an IP the certificate does not name fails", test_tls_name_mismatch},
	{"plaintext client to TLS server fails", test_plaintext_to_tls},
};

/*
 * read_config
 *		Read what run.sh passes in the environment (see client_test.h);
 *		false when the program was not started by run.sh.
 */
static bool
read_config(void)
{
	const char *tls_port = getenv("RB_TEST_TLS_PORT");
	const char *s;

	plain_target = getenv("RB_TEST_PLAIN_TARGET");
	log_file = getenv("RB_TEST_LOG_FILE");
	emulator_program = getenv("RB_TEST_EMULATOR");
	data_file = getenv("RB_TEST_DATA");
	if (plain_target == NULL || tls_port == NULL || log_file == NULL)
		return false;
	snprintf(tls_name_target, sizeof(tls_name_target), "localhost:%s",
			 tls_port);
	snprintf(tls_ip_target, sizeof(tls_ip_target), "127.0.0.1:%s", tls_port);
	ca_pem = read_file(getenv("RB_TEST_CA_FILE"));
	other_ca_pem = read_file(getenv("RB_TEST_OTHER_CA_FILE"));
	s = getenv("RB_TEST_SLOW");
	if (s != NULL && s[0] != '\0')
		slow = 5;
	return true;
}

/*
 * main
 *		Run every test and print the summary; exits 1 when a test failed, 2
 *		when not started by run.sh.
 */
int
main(void)
{
	int			rc;

	if (!read_config())
	{
		fprintf(stderr, "client_test: run me through test/client/run.sh\n");
		return 2;
	}
	for (size_t i = 0; i < sizeof(tests) / sizeof(tests[0]); i++)
		run_test(tests[i].name, tests[i].fn);

	rc = report_results();
	free(ca_pem);
	free(other_ca_pem);
	return rc;
}
