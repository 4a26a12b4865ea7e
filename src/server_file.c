/*-------------------------------------------------------------------------
 *
 * server_file.c
 *		  Reading the server files that options name (ca_file,
 *		  service_account_key_file): a small utility below every file that
 *		  reads one (connection.c, credentials.c, jwt.c).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "storage/fd.h"

#include "redis_backup_fdw.h"

/*
 * rb_read_server_file
 *		The text of a file named by a file option (ca_file,
 *		service_account_key_file): what names it in messages.  The file is
 *		opened without blocking and must be a regular file of at most
 *		max_size bytes (22023 otherwise): a FIFO or a device named there
 *		must not hang the backend in open() or read(), where neither cancel
 *		nor terminate reach it.
 */
char *
rb_read_server_file(const char *path, const char *what, int max_size)
{
	int			fd;
	struct stat st;
	char	   *buf;
	size_t		len = 0;

	fd = OpenTransientFile(path, O_RDONLY | O_NONBLOCK | PG_BINARY);
	if (fd < 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not open %s \"%s\": %m", what, path)));
	if (fstat(fd, &st) != 0)
	{
		int			save_errno = errno;

		CloseTransientFile(fd);
		errno = save_errno;
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not stat %s \"%s\": %m", what, path)));
	}
	if (!S_ISREG(st.st_mode))
	{
		CloseTransientFile(fd);
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s \"%s\" is not a regular file", what, path)));
	}
	if (st.st_size > max_size)
	{
		CloseTransientFile(fd);
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s \"%s\" is larger than %d bytes", what, path,
						max_size)));
	}

	/* A regular file: reads never block, and the file may have shrunk. */
	buf = palloc(st.st_size + 1);
	while (len < (size_t) st.st_size)
	{
		ssize_t		n = read(fd, buf + len, st.st_size - len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
		{
			int			save_errno = errno;

			CloseTransientFile(fd);
			errno = save_errno;
			ereport(ERROR,
					(errcode_for_file_access(),
					 errmsg("could not read %s \"%s\": %m", what, path)));
		}
		if (n == 0)
			break;
		len += n;
	}
	CloseTransientFile(fd);
	buf[len] = '\0';
	return buf;
}
