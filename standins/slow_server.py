"""A hostile HTTP server for the time limit tests: it answers, but too slowly to be useful.

Not a stand-in for any vendor's API: it mimics what a misbehaving server or proxy does on any
path. ``/trickle-headers`` sends its status line and headers one byte a second;
``/unavailable`` answers 503 with ``Retry-After: 2`` at once (RFC 9110, section 10.2.3);
every other path, GET or POST, sends its headers at once and then a small JSON body one byte
a second, the way a server stalled behind a slow link does.
"""

from __future__ import annotations

import json
import threading
import time
from typing import ClassVar

from standins.local_http import LocalHttpServer, QuietHandler

# What a REST step (records_path: items) and a GraphQL step (records_path: items) read.
BODY = json.dumps({"items": [{"id": 1}], "data": {"items": [{"id": 1}]}}).encode()
TRICKLE_INTERVAL_SECONDS = 1.0


class _SlowHandler(QuietHandler):
    protocol_version = "HTTP/1.1"
    requests_seen: ClassVar[dict[str, int]] = {}
    lock: ClassVar[threading.Lock] = threading.Lock()

    def do_GET(self) -> None:
        self._answer()

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        self._answer()

    def _answer(self) -> None:
        path = self.path.split("?")[0]
        with self.lock:
            self.requests_seen[path] = self.requests_seen.get(path, 0) + 1
        try:
            if path == "/unavailable":
                self._send_at_once(503, b'{"error": "try again later"}', {"Retry-After": "2"})
            elif path == "/trickle-headers":
                head = (
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                    f"Content-Length: {len(BODY)}\r\n\r\n"
                ).encode()
                self._trickle(head)
                self.wfile.write(BODY)
            else:
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(BODY)))
                self.end_headers()
                self._trickle(BODY)
        except (BrokenPipeError, ConnectionResetError):
            return  # the client gave up, as it should

    def _send_at_once(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def _trickle(self, data: bytes) -> None:
        for index in range(len(data)):
            self.wfile.write(data[index : index + 1])
            self.wfile.flush()
            time.sleep(TRICKLE_INTERVAL_SECONDS)


class SlowServer(LocalHttpServer):
    """The slow server on a free loopback port; ``requests_seen`` counts requests by path."""

    def __init__(self) -> None:
        handler = type("Handler", (_SlowHandler,), {"requests_seen": {}})
        super().__init__(handler)
        self.requests_seen: dict[str, int] = handler.requests_seen
