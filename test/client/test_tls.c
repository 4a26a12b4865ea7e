/*-------------------------------------------------------------------------
 *
 * test_tls.c
 *		  Client tests: TLS channels.
 *
 * See client_test.h for the harness and how the tests are run.
 *
 * test/client/test_tls.c
 *
 *-------------------------------------------------------------------------
 */
#include "client_test.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ----------------------------------------------------------------------
 * TLS
 * ----------------------------------------------------------------------
 */
void
test_tls_ok(void)
{
	RbStatus	st;
	RbChannel  *ch;
	ListBackupsResponse *r;
	const char *m;

	CHECK(ca_pem != NULL, "no CA file");
	ch = open_tls(tls_name_target, ca_pem, &st);
	CHECK(ch != NULL, "open: %s", st.message);
	CHECK_GET(ch, "b-a1", check_b_a1);
	CHECK(st.request_id[0] != '\0', "no x-request-id over TLS");
	r = do_list(ch, TOKEN_ALL, "folder-a", 0, NULL, &st, NULL);
	CHECK_CODE(st, RB_OK);
	m = check_folder_a(r->backups, r->n_backups);
	free_msg(r);
	CHECK(m == NULL, "%s", m);
	rb_channel_close(ch);
}

/*
 * tls_expect_unavailable
 *		A Get over a channel that cannot be established ends UNAVAILABLE.
 */
static const char *
tls_expect_unavailable(const char *target, bool plaintext, const char *ca)
{
	static char buf[700];
	RbStatus	st;
	RbChannelOptions opts;
	RbChannel  *ch;
	Backup	   *b;

	memset(&opts, 0, sizeof(opts));
	opts.target = target;
	opts.plaintext = plaintext;
	opts.ca_pem = ca;
	ch = rb_channel_open(&opts, &st);
	if (ch == NULL)
	{
		snprintf(buf, sizeof(buf), "open: %s", st.message);
		return buf;
	}
	b = do_get(ch, TOKEN_ALL, "b-a1", &st);
	free_msg(b);
	rb_channel_close(ch);
	if (b != NULL || st.code != RB_UNAVAILABLE)
	{
		snprintf(buf, sizeof(buf), "expected UNAVAILABLE, got %s (%s)",
				 rb_code_name(st.code), st.message);
		return buf;
	}
	return NULL;
}

void
test_tls_wrong_ca(void)
{
	const char *m;

	CHECK(other_ca_pem != NULL, "no second CA file");
	m = tls_expect_unavailable(tls_name_target, false, other_ca_pem);
	CHECK(m == NULL, "unrelated CA: %s", m);
	m = tls_expect_unavailable(tls_name_target, false, NULL);
	CHECK(m == NULL, "system roots: %s", m);
}

void
test_tls_name_mismatch(void)
{
	const char *m;

	/* the certificate names DNS:localhost only, no IP address */
	m = tls_expect_unavailable(tls_ip_target, false, ca_pem);
	CHECK(m == NULL, "%s", m);
}

void
test_plaintext_to_tls(void)
{
	const char *m;

	m = tls_expect_unavailable(tls_name_target, true, NULL);
	CHECK(m == NULL, "%s", m);
}
