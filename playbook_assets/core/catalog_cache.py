"""A cache of validated playbooks, so that loading a large catalog parses only changed files.

Reading a playbook's YAML with the line of every key and validating it (sqlglot parses every
expression and template) is most of the catalog's load time. A playbook that validated once
is stored as its parsed YAML and the line of every key, in one JSON file beside the
configuration (``.playbook-cache/catalog.json``; JSON only, never pickles, so a cache file
can never run code). An entry is keyed by the file's bytes, where it is shown, its origin,
the effective configuration and the code version: any of them changing makes a full parse
and validation again. A hit still builds the spec models from the stored data (pydantic),
so the spec is exactly what a full parse gives; only the YAML parser and the whole-playbook
checks are skipped. Anything doubtful (an unreadable or foreign cache file, YAML values that
JSON cannot carry exactly) falls back to a full parse. Broken playbooks are never stored, so
their errors are always current.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import importlib.metadata
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from playbook_assets.core.config import ExecutorConfig
from playbook_assets.core.errors import ArtifactWriteError
from playbook_assets.core.yaml_source import PathKey, YamlDocument

logger = logging.getLogger(__name__)

CACHE_DIR_NAME = ".playbook-cache"
CACHE_FILE_NAME = "catalog.json"
# Bumped when the layout of an entry changes.
_FORMAT = 1
# YAML dates (parameter defaults) travel as ``{"__date__": "2024-01-31"}``; a playbook whose
# own data holds such a mapping does not survive the round trip and is simply not stored.
_DATE_TAG = "__date__"
_DATETIME_TAG = "__datetime__"


def _encode(value: object) -> dict[str, str]:
    if isinstance(value, dt.datetime):
        return {_DATETIME_TAG: value.isoformat()}
    if isinstance(value, dt.date):
        return {_DATE_TAG: value.isoformat()}
    raise TypeError(f"{type(value).__name__} is not stored in the playbook cache")


def _decode(mapping: dict[str, Any]) -> Any:
    if len(mapping) == 1:
        if _DATE_TAG in mapping:
            return dt.date.fromisoformat(mapping[_DATE_TAG])
        if _DATETIME_TAG in mapping:
            return dt.datetime.fromisoformat(mapping[_DATETIME_TAG])
    return mapping


def _dumps(value: object) -> str:
    return json.dumps(value, default=_encode, separators=(",", ":"))


def _loads(text: str | bytes) -> Any:
    return json.loads(text, object_hook=_decode)


def cache_path(config: ExecutorConfig) -> Path | None:
    """Where the catalog cache of this configuration lives (none without a config file)."""
    if config.path is None:
        return None
    return config.base_dir / CACHE_DIR_NAME / CACHE_FILE_NAME


def code_version() -> str:
    """The product's version and a digest of its modules' sizes and modification times.

    The version alone does not change while the code is edited in place (an editable
    install), and validation lives in these modules, so their stat data is part of the key.
    """
    digest = hashlib.sha256()
    digest.update(importlib.metadata.version("playbook-executor").encode())
    digest.update(importlib.metadata.version("sqlglot").encode())
    digest.update(importlib.metadata.version("pydantic").encode())
    root = Path(__file__).resolve().parent.parent
    for path in sorted(root.rglob("*.py")):
        info = path.stat()
        digest.update(f"{path.relative_to(root)}:{info.st_size}:{info.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def config_fingerprint(config: ExecutorConfig) -> str:
    """A digest of the effective configuration (after environment values were read).

    Only the digest is stored, so no setting (a secret among them) is written to the cache.
    """
    return hashlib.sha256(repr(config).encode()).hexdigest()


@dataclass
class CatalogCache:
    """The entries read from the cache file, and those this load used or added."""

    path: Path | None
    salt: str
    stored: dict[str, Any] = field(default_factory=dict)
    used: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def open(cls, config: ExecutorConfig) -> CatalogCache:
        """The cache for ``config``; empty when it is missing or cannot be trusted."""
        path = cache_path(config)
        salt = f"{_FORMAT}:{code_version()}:{config_fingerprint(config)}"
        cache = cls(path, salt)
        if path is None:
            return cache
        try:
            content = _loads(path.read_bytes())
        except FileNotFoundError:
            return cache
        except (OSError, ValueError) as e:
            logger.warning("ignoring the playbook cache %s: %s", path, e)
            return cache
        if isinstance(content, dict) and isinstance(content.get("entries"), dict):
            cache.stored = content["entries"]
        return cache

    def key(self, raw: bytes, shown: str, origin: str) -> str:
        """The entry's key: the file's bytes, where it is shown, its origin, config and code."""
        digest = hashlib.sha256(self.salt.encode())
        digest.update(f"\0{origin}\0{shown}\0".encode())
        digest.update(raw)
        return digest.hexdigest()

    def document(self, key: str, shown: str) -> YamlDocument | None:
        """The stored document of a playbook that validated, if there is one."""
        entry = self.stored.get(key)
        if not isinstance(entry, dict):
            return None
        try:
            lines: dict[PathKey, int] = {tuple(path): int(line) for path, line in entry["lines"]}
            document = YamlDocument(shown, entry["data"], lines)
        except (KeyError, TypeError, ValueError):
            return None
        self.used[key] = entry
        return document

    def stored_playbook_id(self, key: str) -> str | None:
        """The id of the playbook stored under ``key``, without using the entry."""
        entry: Any = self.stored.get(key)
        try:
            playbook_id = entry["data"]["playbook"]["id"]
        except (KeyError, TypeError):
            return None
        return playbook_id if isinstance(playbook_id, str) else None

    def add(self, key: str, document: YamlDocument) -> None:
        """Store a playbook that validated, when JSON carries its data exactly."""
        entry = {"data": document.data, "lines": [[list(k), v] for k, v in document.lines.items()]}
        try:
            if not _same(_loads(_dumps(entry["data"])), document.data):
                return  # e.g. integer keys: JSON would hand them back as strings
        except (TypeError, ValueError):
            return  # a value JSON cannot carry
        self.used[key] = entry

    def save(self) -> None:
        """Write the entries this load used (files gone or changed drop out), atomically."""
        if self.path is None or self.used == self.stored:
            return
        # pyarrow comes with the artifacts module: imported only when there is something new.
        from playbook_assets.core.artifacts import atomic_write_bytes

        data = _dumps({"format": _FORMAT, "entries": self.used}).encode()
        try:
            atomic_write_bytes(self.path, data)
        except ArtifactWriteError as e:  # a read-only folder only costs the next load its speed
            logger.warning("could not write the playbook cache %s: %s", self.path, e)


def _same(left: Any, right: Any) -> bool:
    """Equal and of the same types throughout (``1 == 1.0 == True`` is not good enough)."""
    if type(left) is not type(right):
        return False
    if isinstance(left, dict):
        return left.keys() == right.keys() and all(_same(left[k], right[k]) for k in left)
    if isinstance(left, list):
        return len(left) == len(right) and all(map(_same, left, right))
    return bool(left == right)
