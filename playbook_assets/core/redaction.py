"""Keeping configured secrets out of everything the product writes.

Every value the environment supplies for a ``${VAR}`` in a connection's text settings, and
every API credential a step reads from the environment, is remembered when it is read (in the
run's process). ``redact`` then replaces each of them in text that came from a service (error
bodies, driver messages) before that text reaches a report, a log, metadata or an exception.
"""

from __future__ import annotations

import json
import threading
from urllib.parse import quote, quote_plus

MASK = "***"
# Shorter values would match ordinary text everywhere; they are not worth the name of secret.
MIN_SECRET_LENGTH = 4

_lock = threading.Lock()
_secrets: set[str] = set()


def remember_secret(value: str) -> None:
    """Treat ``value`` as a secret from now on in this process, in the forms a service may
    echo it: as is, URL-encoded and JSON-escaped."""
    if len(value) < MIN_SECRET_LENGTH:
        return
    forms = {value, quote(value, safe=""), quote_plus(value), json.dumps(value)[1:-1]}
    with _lock:
        _secrets.update(form for form in forms if len(form) >= MIN_SECRET_LENGTH)


def redact(text: str) -> str:
    """``text`` with every remembered secret replaced by ``***``."""
    with _lock:
        secrets = sorted(_secrets, key=len, reverse=True)  # longest first: no partial leftovers
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    return text
