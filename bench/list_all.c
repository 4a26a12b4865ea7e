/*
 * list_all.c
 *		The baseline of bench/scan_bench.sh: page through a folder with the
 *		client library alone (no PostgreSQL), as the FDW does, and report
 *		rows and seconds.
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
		Yandex__Cloud__Mdb__Redis__V1__ListBackupsRequest req =
		YANDEX__CLOUD__MDB__REDIS__V1__LIST_BACKUPS_REQUEST__INIT;
		Yandex__Cloud__Mdb__Redis__V1__ListBackupsResponse *resp;
		size_t		n = 0;

		req.folder_id = argv[3];
		req.page_size = atoi(argv[4]);
		req.page_token = token;
		resp = (Yandex__Cloud__Mdb__Redis__V1__ListBackupsResponse *)
			rb_call_unary(channel, RB_METHOD_BACKUP_LIST, &req.base, argv[2],
						  30000, NULL, NULL, NULL, &status, &n);
		calls++;
		bytes += n;
		if (resp == NULL)
		{
			fprintf(stderr, "call: %s: %s\n", rb_code_name(status.code),
					status.message);
			return 1;
		}
		rows += (long) resp->n_backups;
		snprintf(token, sizeof(token), "%s", resp->next_page_token);
		protobuf_c_message_free_unpacked(&resp->base, NULL);
		if (token[0] == '\0')
			break;
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	printf("rows=%ld calls=%ld bytes=%zu seconds=%.3f\n", rows, calls, bytes,
		   (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9);
	rb_channel_close(channel);
	return 0;
}
