/*
 * list_all.c
 *		The baseline of bench/scan_bench.sh: page through a folder with the
 *		client library alone (no PostgreSQL), as the FDW does, and report
 *		rows and seconds.  Pages with rb_list_request / rb_list_reply_page,
 *		the one page API of every listing method.
 *
 *		list_all HOST:PORT TOKEN FOLDER PAGE_SIZE
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rb_client.h"

int
main(int argc, char **argv)
{
	RbChannelOptions opts;
	RbChannel  *channel;
	RbStatus	status;
	char		token[128] = "";
	long		rows = 0;
	long		calls = 0;
	size_t		bytes = 0;
	struct timespec t0,
				t1;

	if (argc != 5)
	{
		fprintf(stderr, "usage: %s HOST:PORT TOKEN FOLDER PAGE_SIZE\n", argv[0]);
		return 2;
	}
	memset(&opts, 0, sizeof(opts));
	opts.target = argv[1];
	opts.plaintext = true;
	channel = rb_channel_open(&opts, &status);
	if (channel == NULL)
	{
		fprintf(stderr, "open: %s\n", status.message);
		return 1;
	}

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;)
	{
		RbListRequest req;
		const ProtobufCMessage *msg;
		ProtobufCMessage *reply;
		RbListPage page;
		size_t		n = 0;

		msg = rb_list_request(&req, RB_METHOD_BACKUP_LIST, argv[3],
							  atoi(argv[4]), token);
		reply = rb_call_unary(channel, RB_METHOD_BACKUP_LIST, msg, argv[2],
							  NULL,
							  30000, NULL, NULL, NULL, &status, &n);
		calls++;
		bytes += n;
		if (reply == NULL)
		{
			fprintf(stderr, "call: %s: %s\n", rb_code_name(status.code),
					status.message);
			return 1;
		}
		if (!rb_list_reply_page(RB_METHOD_BACKUP_LIST, reply, &page))
		{
			fprintf(stderr, "call: not a page\n");
			return 1;
		}
		rows += (long) page.n_items;
		snprintf(token, sizeof(token), "%s", page.next_page_token);
		protobuf_c_message_free_unpacked(reply, NULL);
		if (token[0] == '\0')
			break;
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	printf("rows=%ld calls=%ld bytes=%zu seconds=%.3f\n", rows, calls, bytes,
		   (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9);
	rb_channel_close(channel);
	return 0;
}
