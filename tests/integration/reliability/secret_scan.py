"""Looking for secrets in everything a run wrote: every file under a folder, and for SQLite
databases (Dagster's instance) every value of every table, zlib-compressed ones (Dagster's
run and job snapshots) decompressed."""

from __future__ import annotations

import sqlite3
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from urllib.parse import quote

_SQLITE_HEADER = b"SQLite format 3\x00"


def texts_under(root: Path) -> Iterator[tuple[str, str]]:
    """``(where, text)`` for every file under ``root`` and every value in its databases."""
    for path in sorted(root.rglob("*")):
        if not path.is_file():
            continue
        data = path.read_bytes()
        yield str(path), data.decode("utf-8", "replace")
        if data.startswith(_SQLITE_HEADER):
            yield from _database_texts(path)


def _database_texts(path: Path) -> Iterator[tuple[str, str]]:
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        tables = [row[0] for row in connection.execute("SELECT name FROM sqlite_master")]
        for table in tables:
            try:
                rows = connection.execute(f'SELECT * FROM "{table}"').fetchall()
            except sqlite3.DatabaseError:  # an index or view listed in sqlite_master
                continue
            for row in rows:
                for value in row:
                    for text in _decoded(value):
                        yield f"{path}:{table}", text
    finally:
        connection.close()


def _decoded(value: object) -> Iterator[str]:
    if isinstance(value, str):
        yield value
        value = value.encode("utf-8", "replace")
    if isinstance(value, bytes):
        yield value.decode("utf-8", "replace")
        try:
            yield zlib.decompress(value).decode("utf-8", "replace")
        except zlib.error:
            pass


def find_secrets(secrets: Sequence[str], texts: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    """``(secret, where)`` for each place a secret appears, as is or URL-encoded."""
    found: list[tuple[str, str]] = []
    for secret in secrets:
        forms = {secret, quote(secret, safe="")}
        found += [(secret, where) for where, text in texts if any(f in text for f in forms)]
    return found
