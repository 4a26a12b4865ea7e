#!/usr/bin/python3
"""Page through a folder with a plain Python grpcio client: the comparison
point of bench/scan_bench.sh.

    list_all.py HOST:PORT TOKEN FOLDER PAGE_SIZE PYGEN_DIR

PYGEN_DIR holds the modules protoc --python_out made from proto/ (the bench
script makes them).  Prints "rows=N calls=N bytes=N seconds=S" like
bench/list_all.
"""
import sys
import time

import grpc


def main():
    addr, token, folder, page_size, pygen = sys.argv[1:6]
    sys.path.insert(0, pygen)
    from yandex.cloud.mdb.redis.v1 import backup_service_pb2 as bs

    channel = grpc.insecure_channel(addr)
    list_backups = channel.unary_unary(
        "/yandex.cloud.mdb.redis.v1.BackupService/List",
        request_serializer=bs.ListBackupsRequest.SerializeToString,
        response_deserializer=bs.ListBackupsResponse.FromString)
    metadata = [("authorization", "Bearer " + token)]
    rows = calls = nbytes = 0
    page_token = ""
    start = time.monotonic()
    while True:
        reply = list_backups(bs.ListBackupsRequest(folder_id=folder,
                                                   page_size=int(page_size),
                                                   page_token=page_token),
                             metadata=metadata, timeout=30)
        calls += 1
        rows += len(reply.backups)
        nbytes += reply.ByteSize()
        page_token = reply.next_page_token
        if not page_token:
            break
    print("rows=%d calls=%d bytes=%d seconds=%.3f"
          % (rows, calls, nbytes, time.monotonic() - start))


if __name__ == "__main__":
    main()
