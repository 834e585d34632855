"""The run request folder (``requests.directory`` in the config): another system starts a run by
dropping ``{"playbook_id": ..., "parameters": {...}, "partition": ...}`` as a JSON or YAML file
(written to a dot-file or ``*.tmp``, then renamed into place). Each request is read safely (no
symbolic link followed, bounded size and nesting), validated on its own, then moved to
``accepted/`` (its run is requested) or ``rejected/`` (with the reason in
``<name>.error.txt``), so none is lost silently.
"""

from __future__ import annotations

import errno
import os
import re
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import dagster as dg

from playbook_assets.core.artifacts import atomic_write_bytes
from playbook_assets.core.catalog import PlaybookCatalog
from playbook_assets.core.errors import PlaybookError, PlaybookValidationError
from playbook_assets.core.yaml_source import DEFAULT_LIMITS, YamlLimitError, YamlLimits, load_yaml
from playbook_assets.dagster_adapter.partitions import partitions_definition
from playbook_assets.dagster_adapter.run_config import (
    ASSET_JOB,
    AssetKeys,
    asset_key,
    playbook_run_request,
)

REQUEST_SUFFIXES = (".json", ".yaml", ".yml")
_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,39}")


def read_request(path: Path, limits: YamlLimits = DEFAULT_LIMITS) -> Mapping[str, Any]:
    """A run request file's content, read safely from a folder anyone may write to.

    A symbolic link is refused, never followed (``O_NOFOLLOW``), so a request cannot make the
    sensor read a file outside the folder; only a regular file is read, and only up to
    ``limits.max_file_bytes``; nesting and aliases are bounded as in playbooks. No error
    repeats what the file holds beyond its playbook id, parameters and partition: a syntax
    error gives its line only, an unknown key its name only when it is a plain name.
    """
    name = path.name
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise PlaybookValidationError(
                "the request is a symbolic link, which is refused",
                hint="write the request itself into the folder (to a dot-file, then rename it)",
            ) from None
        raise PlaybookValidationError(f"cannot read the request: {e.strerror}") from None
    with os.fdopen(fd, "rb") as handle:
        status = os.fstat(fd)
        if not stat.S_ISREG(status.st_mode):
            raise PlaybookValidationError("the request is not a regular file")
        if status.st_size > limits.max_file_bytes:
            raise PlaybookValidationError(
                f"the request is {status.st_size:,} bytes, over the limit of "
                f"{limits.max_file_bytes:,} (limits.max_file_bytes)"
            )
        raw = handle.read(limits.max_file_bytes + 1)
    if len(raw) > limits.max_file_bytes:
        raise PlaybookValidationError(
            f"the request grew past the limit of {limits.max_file_bytes:,} bytes "
            "(limits.max_file_bytes) while it was read"
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise PlaybookValidationError("the request is not UTF-8 text") from None
    try:
        data = load_yaml(text, name, limits).data
    except PlaybookValidationError as e:
        raise _content_free(e) from None
    if not isinstance(data, dict):
        raise PlaybookValidationError(
            "a request is a mapping with playbook_id and parameters",
            hint='e.g. {"playbook_id": "segment_analysis", "parameters": {"segment": "smb"}}',
        )
    unknown = sorted(str(key) for key in set(data) - {"playbook_id", "parameters", "partition"})
    if unknown:
        shown = f"'{unknown[0]}'" if _PLAIN_KEY.fullmatch(unknown[0]) else "(not a plain name)"
        raise PlaybookValidationError(
            f"unknown key {shown} in the request",
            hint="a request has playbook_id, parameters and (optionally) partition",
        )
    if not isinstance(data.get("playbook_id"), str):
        raise PlaybookValidationError("the request has no playbook_id")
    if not isinstance(data.get("parameters") or {}, dict):
        raise PlaybookValidationError("the request's parameters must be a mapping")
    return data


def _content_free(error: PlaybookValidationError) -> PlaybookValidationError:
    """A load error of a request without the text of the file: its line, and which limit."""
    line = error.location.line if error.location is not None else None
    if isinstance(error, YamlLimitError):
        # The limit messages are the loader's own words, never the file's.
        return PlaybookValidationError(
            f"the request breaks a limit at line {line}: {error.message}"
        )
    return PlaybookValidationError(
        "the request is not valid JSON or YAML" + (f" (line {line})" if line else ""),
        hint="check it with a JSON or YAML parser",
    )


def validate_request(
    data: Mapping[str, Any],
    catalog: PlaybookCatalog,
    instance: dg.DagsterInstance,
    asset_keys: AssetKeys = asset_key,
) -> dg.RunRequest:
    """The run request for a valid request; raises PlaybookError for an invalid one."""
    loaded = catalog.get(str(data["playbook_id"]))
    spec = loaded.spec
    partition = data.get("partition")
    request = playbook_run_request(
        spec,
        data.get("parameters") or {},
        partition_key=str(partition) if partition is not None else None,
        keys=asset_keys,
    )
    partitions = partitions_definition(spec.partitions)
    if partitions is not None:
        if partition is None:
            raise PlaybookValidationError(f"playbook '{spec.id}' is partitioned: give a partition")
        if str(partition) not in partitions.get_partition_keys(dynamic_partitions_store=instance):
            raise PlaybookValidationError(f"'{partition}' is not a partition of '{spec.id}'")
    elif partition is not None:
        raise PlaybookValidationError(f"playbook '{spec.id}' has no partitions")
    return request


def request_sensor(
    catalog: PlaybookCatalog,
    folder: Path,
    interval_seconds: int,
    limits: YamlLimits = DEFAULT_LIMITS,
    asset_keys: AssetKeys = asset_key,
) -> dg.SensorDefinition:
    """Validates and launches run requests dropped in ``folder``.

    Writers put a request in place complete: they write it to a name starting with ``.`` or
    ending in ``.tmp``, then rename it to ``NAME.json`` / ``.yaml`` / ``.yml`` (a rename
    within a folder is atomic). Names starting with ``.`` and other suffixes are ignored.
    Each file is handled on its own: a bad one is moved to ``rejected/`` with its reason and
    never stops the others.
    """

    @dg.sensor(
        name="playbook_requests",
        job_name=ASSET_JOB,
        minimum_interval_seconds=interval_seconds,
        description=f"Starts runs requested by files dropped in {folder}.",
        default_status=dg.DefaultSensorStatus.RUNNING,
    )
    def requests_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult:
        run_requests: list[dg.RunRequest] = []
        if not folder.is_dir():
            return dg.SensorResult(skip_reason=f"{folder} does not exist")
        for path in request_files(folder):
            try:
                stamp = path.lstat().st_mtime_ns
                request = validate_request(
                    read_request(path, limits), catalog, context.instance, asset_keys
                )
            except FileNotFoundError:
                continue  # taken by another evaluation meanwhile
            except Exception as e:
                reason = str(e) if isinstance(e, PlaybookError) else _unexpected(e)
                context.log.error(f"run request {path.name} rejected: {reason}")
                _move(path, folder / "rejected", reason=reason)
                continue
            run_requests.append(
                request.with_replaced_attrs(
                    run_key=f"{path.name}:{stamp}",
                    tags={**request.tags, "playbook/request": path.name},
                )
            )
            _move(path, folder / "accepted")
        return dg.SensorResult(run_requests=run_requests)

    return requests_sensor


def request_files(folder: Path) -> list[Path]:
    """The requests to read in ``folder``: entries named ``*.json``, ``*.yaml`` or ``*.yml``
    not starting with ``.`` (files being written by the protocol above), sorted by name.
    Links and other non-regular entries are listed too, so that they are rejected visibly."""
    with os.scandir(folder) as entries:
        names = [
            entry.name
            for entry in entries
            if not entry.name.startswith(".")
            and entry.name.lower().endswith(REQUEST_SUFFIXES)
            and not entry.is_dir(follow_symlinks=False)
        ]
    return [folder / name for name in sorted(names)]


def _unexpected(error: Exception) -> str:
    # The type only: the message of an unexpected error may quote the file.
    return f"unexpected error while reading the request ({type(error).__name__}); see the logs"


def _move(path: Path, target: Path, *, reason: str | None = None) -> None:
    """Move a request (a link itself, never what it points to) into ``target``."""
    target.mkdir(parents=True, exist_ok=True)
    if reason is not None:
        atomic_write_bytes(target / f"{path.name}.error.txt", (reason + "\n").encode())
    os.replace(path, target / path.name)
