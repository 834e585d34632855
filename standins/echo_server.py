"""A hostile service for the secret tests: it refuses every request with 401 and echoes the
credential it was sent in its error body.

The body has the shape of HubSpot's documented error responses (status, message, category,
correlationId: https://developers.hubspot.com/docs/faq/api-error-responses), so the HubSpot
client and the generic REST step both read it as an ordinary error; the message quotes the
Authorization header as sent and URL-encoded, as a careless server or proxy might.
"""

from __future__ import annotations

import json
from urllib.parse import quote

from standins.local_http import LocalHttpServer, QuietHandler


class _EchoHandler(QuietHandler):
    def do_GET(self) -> None:
        self._refuse()

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self._refuse()

    def _refuse(self) -> None:
        credential = self.headers.get("Authorization", "")
        body = json.dumps(
            {
                "status": "error",
                "message": f"The credential '{credential}' ({quote(credential)}) is not valid",
                "category": "INVALID_AUTHENTICATION",
                "correlationId": "5b0d4e5e-0000-4000-8000-000000000000",
            }
        ).encode()
        self.send_response(401)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class EchoServer(LocalHttpServer):
    """The echoing service on a free loopback port."""

    def __init__(self) -> None:
        super().__init__(_EchoHandler)
