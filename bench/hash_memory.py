"""Load HASHES hashes of FIELDS fields of 100-byte values into a Redis-protocol
server with redis-py pipelines, and print the time taken and the raw size
(keys, field names and values)."""
import sys
import time

import redis

host, port, hashes, fields = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
r = redis.Redis(host=host, port=port)
value = b"v" * 100
t0 = time.time()
for start in range(0, hashes, 50):
    p = r.pipeline(transaction=False)
    for h in range(start, min(start + 50, hashes)):
        p.hset(b"hash:%06d" % h, mapping={b"field%02d" % f: value for f in range(fields)})
    p.execute()
raw = sum(len(b"hash:%06d" % h) for h in range(hashes)) + hashes * fields * (len(b"field00") + 100)
print(f"loaded {hashes} hashes x {fields} fields in {time.time() - t0:.1f} s; raw {raw} bytes ({raw / 2**20:.0f} MiB)")
