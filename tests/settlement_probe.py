"""Shared by tests/lambda-settlement.sh and tests/workers-settlement.sh: open a stream, read
its first event, disconnect, and wait until the settlement has given back the in-flight count.
"""

import json
import socket
import sys
import time


def disconnect_mid_stream(port, path, master_key, in_flight, bound, extra_headers=""):
    """Seconds from the disconnect until `in_flight()` is 0; exits the test on any failure.

    `path` is the chat completions path on 127.0.0.1:`port`; `extra_headers` are raw header
    lines ("name: value\\r\\n"); `in_flight()` reads the Store's count."""
    body = json.dumps({"model": "drip", "stream": True,
                       "messages": [{"role": "user", "content": "hi"}]}).encode()
    s = socket.create_connection(("127.0.0.1", port), timeout=60)
    s.sendall(f"POST {path} HTTP/1.1\r\nhost: 127.0.0.1\r\n".encode()
              + f"authorization: Bearer {master_key}\r\ncontent-type: application/json\r\n".encode()
              + f"{extra_headers}content-length: {len(body)}\r\n\r\n".encode() + body)
    seen = b""
    while b"data: {" not in seen:
        part = s.recv(65536)
        if not part:
            sys.exit(f"the stream ended before its first event: {seen[:300]!r}")
        seen += part
    if not seen.startswith(b"HTTP/1.1 200"):
        sys.exit(f"not a 200: {seen[:300]!r}")
    count = in_flight()
    if count != 1:
        sys.exit(f"in flight while streaming: {count}, expected 1")
    s.close()
    left = time.monotonic()
    while True:
        count = in_flight()
        if count == 0:
            return time.monotonic() - left
        if time.monotonic() - left > bound:
            sys.exit(f"still {count} in flight {bound:.0f} s after the client disconnected")
        time.sleep(0.1)
