#!/usr/bin/env python3
"""A ZLMediaKit-style hook receiver for benchmarks: every POST waits DELAY_MS, then
answers {"code":0,"msg":"success"} (allow). GET /stats returns the number of POSTs
per path and their handling times (ms, receipt of the body -> answer written), so a
benchmark can check that the server really asked it, once per client.

    scripts/hook-receiver.py PORT [DELAY_MS]      # default 5 ms

One thread per connection (ThreadingHTTPServer): ferrocast opens a fresh connection
per hook call and gates calls concurrently, so a serial receiver would measure its
own queue instead of the server. The listen backlog is raised from Python's 5 so
a burst of connects is not dropped (a dropped SYN costs the client a 1 s retry).
"""
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORT = int(sys.argv[1])
DELAY = (float(sys.argv[2]) if len(sys.argv) > 2 else 5.0) / 1000.0
LOCK = threading.Lock()
COUNTS = {}
HANDLE_MS = {}


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        start = time.monotonic()
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        time.sleep(DELAY)
        body = b'{"code":0,"msg":"success"}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        ms = (time.monotonic() - start) * 1000.0
        with LOCK:
            COUNTS[self.path] = COUNTS.get(self.path, 0) + 1
            HANDLE_MS.setdefault(self.path, []).append(ms)

    def do_GET(self):
        with LOCK:
            stats = {}
            for path, n in COUNTS.items():
                ms = sorted(HANDLE_MS[path])
                stats[path] = {"requests": n, "handle_ms_p50": round(ms[len(ms) // 2], 2),
                               "handle_ms_max": round(ms[-1], 2)}
        body = json.dumps({"delay_ms": DELAY * 1000.0, "paths": stats}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024


Server(("127.0.0.1", PORT), Handler).serve_forever()
