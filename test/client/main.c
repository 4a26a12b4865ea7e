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

int
main(void)
{
	const char *tls_port = getenv("RB_TEST_TLS_PORT");
	const char *s;
	int			rc;

	plain_target = getenv("RB_TEST_PLAIN_TARGET");
	log_file = getenv("RB_TEST_LOG_FILE");
	emulator_program = getenv("RB_TEST_EMULATOR");
	data_file = getenv("RB_TEST_DATA");
	if (plain_target == NULL || tls_port == NULL || log_file == NULL)
	{
		fprintf(stderr, "client_test: run me through test/client/run.sh\n");
		return 2;
	}
	snprintf(tls_name_target, sizeof(tls_name_target), "localhost:%s",
			 tls_port);
	snprintf(tls_ip_target, sizeof(tls_ip_target), "127.0.0.1:%s", tls_port);
	ca_pem = read_file(getenv("RB_TEST_CA_FILE"));
	other_ca_pem = read_file(getenv("RB_TEST_OTHER_CA_FILE"));
	s = getenv("RB_TEST_SLOW");
	if (s != NULL && s[0] != '\0')
		slow = 5;

	/* these need a process without gRPC state: keep them first */
	run_test("bad options refused before gRPC starts", test_bad_options);
	run_test("fork before gRPC init: child completes a call",
			 test_fork_before_init);
	run_test("gRPC's own log never shows the token",
			 test_grpc_log_hides_token);
	run_test("first rb_channel_open initialises gRPC", test_lazy_init);

	/* test_api.c: no emulator needed */
	run_test("code and method names", test_names);
	run_test("method table complete and consistent", test_method_table);
	run_test("exported target, token and CA validators", test_validators);
	run_test("rb_list_request for every listing method", test_list_request);
	run_test("rb_list_reply_page on decoded replies", test_list_reply_page);
	run_test("NUL check covers Folder labels and Timestamp replies",
			 test_new_reply_strings);

	/* test_calls.c */
	run_test("BackupService.Get decodes all fields", test_get);
	run_test("absent timestamps, no shards, unknown enum", test_get_odd_values);
	run_test("BackupService.List", test_list);
	run_test("ClusterService.ListBackups", test_cluster_list);
	run_test("replies use the caller's allocator", test_allocator);
	run_test("paging 2500 backups with page_size 1000", test_paging);
	run_test("page_size 0 gives the default 100", test_default_page_size);
	run_test("ClusterService.ListBackups paging", test_cluster_paging);
	run_test("paging through rb_list_request and rb_list_reply_page",
			 test_list_page_api);
	run_test("validation errors and NOT_FOUND", test_validation);
	run_test("authentication and permission errors", test_auth);
	run_test("x-request-id and x-client-request-id", test_request_ids);

	/* test_faults.c */
	run_test("fault latency", test_fault_latency);
	run_test("fault unavailable", test_fault_unavailable);
	run_test("fault exhausted", test_fault_exhausted);
	run_test("fault status", test_fault_status);
	run_test("fault garbage gives BAD_REPLY", test_fault_garbage);
	run_test("NUL in a string is BAD_REPLY, bad UTF-8 passes",
			 test_hostile_strings);
	run_test("fault token_loop", test_fault_token_loop);
	run_test("fault unknown_fields", test_fault_unknown_fields);
	run_test("fault oversize hits max_receive_bytes", test_fault_oversize);
	run_test("deadline against hang", test_deadline);

	/* test_concurrency.c */
	run_test("give-up hook cancels within 0.5 s", test_give_up);
	run_test("concurrent calls collected out of order", test_concurrent);
	run_test("wait_any returns each of 12 calls exactly once", test_wait_any);
	run_test("wait_any never returns abandoned or collected calls",
			 test_wait_any_abandoned);
	run_test("wait_any give-up returns GAVE_UP and cancels nothing",
			 test_wait_any_give_up);
	run_test("wait_any on a channel with nothing in flight",
			 test_wait_any_empty);
	run_test("abandon and close do not hang", test_abandon_and_close);

	/* test_faults.c */
	run_test("local errors and unreachable server", test_local_errors);
	run_test("a channel recovers within 1.5 s after an outage",
			 test_reconnect_after_outage);

	/* test_concurrency.c */
	run_test("signals go to the main thread only", test_signals);
	run_test("fork after gRPC init is refused", test_fork_after_init);

	/* test_tls.c */
	run_test("TLS with the right CA", test_tls_ok);
	run_test("TLS with a wrong CA fails", test_tls_wrong_ca);
	run_test("TLS to an IP the certificate does not name fails",
			 test_tls_name_mismatch);
	run_test("plaintext client to TLS server fails", test_plaintext_to_tls);

	rc = report_results();
	free(ca_pem);
	free(other_ca_pem);
	return rc;
}
