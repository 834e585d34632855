"""The playbooks a run worker needs: a process that Dagster started to execute one run builds
only the playbooks that run selected, not the whole code location again.

The code server already loaded every playbook to serve the UI; the process it then starts for
a launched run (and each step process of the multiprocess executor) loads the code location
once more, which with a thousand playbooks is most of the run's time. Dagster hands the
loading code no run (``DefinitionsLoadContext`` only says that this is a reconstruction), so
the run is found where Dagster put it for that process:

- the code server's run process (``dagster._grpc.impl.start_run_in_subprocess``) gets the
  serialized ``ExecuteExternalJobArgs`` as its first argument;
- ``dagster api execute_run`` / ``execute_step`` (other run launchers) get ``ExecuteRunArgs`` /
  ``ExecuteStepArgs`` as their JSON argument or in ``DAGSTER_(COMPRESSED_)EXECUTE_*_ARGS``;
- a step process of the multiprocess executor gets its ``DagsterRun`` in the command object
  that is its argument.

On any doubt (not a reconstruction, no run found, a job other than the implicit asset job, a
selected asset that is not one of these playbooks', any error) the answer is None and the
whole code location is built, as before: the selection only ever saves time.
"""

from __future__ import annotations

import base64
import functools
import logging
import multiprocessing
import os
import sys
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import dagster as dg
from dagster._core.definitions.definitions_load_context import (
    DefinitionsLoadContext,
    DefinitionsLoadType,
)
from dagster._core.instance.ref import InstanceRef
from dagster._grpc.types import ExecuteExternalJobArgs, ExecuteRunArgs, ExecuteStepArgs
from dagster._serdes import deserialize_value, serialize_value

from playbook_assets.dagster_adapter.run_config import ASSET_JOB

logger = logging.getLogger(__name__)

_ARGS_VARIABLES = ("DAGSTER_EXECUTE_RUN_ARGS", "DAGSTER_EXECUTE_STEP_ARGS")
_COMPRESSED_ARGS_VARIABLES = (
    "DAGSTER_COMPRESSED_EXECUTE_RUN_ARGS",
    "DAGSTER_COMPRESSED_EXECUTE_STEP_ARGS",
)
_LAUNCH_ARGS = (ExecuteExternalJobArgs, ExecuteRunArgs, ExecuteStepArgs)
# The runs whose selection this process already reported in their log.
_REPORTED: set[str] = set()


@dataclass(frozen=True)
class LaunchedRun:
    """The run a process was started to execute, and the instance it is stored on."""

    run: dg.DagsterRun
    instance_ref: InstanceRef | None


def launched_run() -> LaunchedRun | None:
    """The run this process was started to execute, when Dagster is reconstructing the code
    location in a process it started for one run; None otherwise (and on any doubt)."""
    if DefinitionsLoadContext.get().load_type != DefinitionsLoadType.RECONSTRUCTION:
        return None
    try:
        return _find_launched_run()
    except Exception:  # the selection only saves time: never let it break a run
        logger.debug("no run found for this run worker", exc_info=True)
        return None


def requested_playbooks(launched: LaunchedRun | None, key_prefix: Sequence[str]) -> set[str] | None:
    """The ids of the playbooks the ``launched`` run selected assets or checks of (keys under
    ``key_prefix``), when it is a run of the implicit asset job that selected nothing else;
    None otherwise (build everything)."""
    if launched is None or not launched.run.job_name.startswith(ASSET_JOB):
        return None  # e.g. the prune job: not built from the selection
    run = launched.run
    keys = list(run.asset_selection or ())
    keys += [check.asset_key for check in run.asset_check_selection or ()]
    if not keys:
        return None  # the whole asset job
    prefix = tuple(key_prefix)
    requested: set[str] = set()
    for key in keys:
        path = tuple(key.path)
        if len(path) != len(prefix) + 2 or path[: len(prefix)] != prefix:
            return None  # an asset that is not a playbook's: it may need anything
        requested.add(path[-2])
    return requested


def run_worker_playbooks(
    launched: LaunchedRun | None, playbook_ids: Sequence[str], key_prefix: Sequence[str]
) -> list[str] | None:
    """The playbooks (of ``playbook_ids``) the ``launched`` run selected, when it selected
    only playbooks' assets and checks, all of them among ``playbook_ids``; None otherwise
    (build everything). The run's log says which were built (an engine event, once a
    process: Dagster may load the location twice in one process, for the plan and the run)."""
    requested = requested_playbooks(launched, key_prefix)
    if launched is None or requested is None or not requested <= set(playbook_ids):
        return None
    selected = sorted(requested)
    run = launched.run
    if launched.instance_ref is not None and run.run_id not in _REPORTED:
        _REPORTED.add(run.run_id)
        try:
            with dg.DagsterInstance.from_ref(launched.instance_ref) as instance:
                instance.report_engine_event(
                    f"Built only the playbooks this run selected: {', '.join(selected)}.",
                    run,
                )
        except Exception:  # the note is for people; the run goes on without it
            logger.warning("could not note the playbooks built for run %s", run.run_id)
    return selected


def _find_launched_run() -> LaunchedRun | None:
    for candidate in _launch_arguments():
        run = getattr(candidate, "dagster_run", None)
        if isinstance(run, dg.DagsterRun):  # a multiprocess executor's step process
            ref = getattr(candidate, "instance_ref", None)
            return LaunchedRun(run, ref if isinstance(ref, InstanceRef) else None)
        if not isinstance(candidate, str) or not candidate.lstrip().startswith("{"):
            continue
        try:
            args = deserialize_value(candidate)
        except Exception:
            continue
        if isinstance(args, _LAUNCH_ARGS) and args.instance_ref is not None:
            return _stored_run(args.run_id, serialize_value(args.instance_ref))
    return None


@functools.lru_cache(maxsize=4)
def _stored_run(run_id: str, instance_ref: str) -> LaunchedRun | None:
    """The run from its instance (``instance_ref`` serialized, so that it can key the cache),
    read once a process: Dagster loads the location twice there."""
    ref = deserialize_value(instance_ref, InstanceRef)
    with dg.DagsterInstance.from_ref(ref) as instance:
        run = instance.get_run_by_id(run_id)
    return LaunchedRun(run, ref) if run is not None else None


def _launch_arguments() -> Iterator[object]:
    """What this process was started with: its multiprocessing target's arguments, its
    command line, the environment variables ``dagster api`` reads its arguments from."""
    yield from getattr(multiprocessing.current_process(), "_args", ())
    yield from sys.argv[1:]
    for name in _ARGS_VARIABLES:
        if os.environ.get(name):
            yield os.environ[name]
    for name in _COMPRESSED_ARGS_VARIABLES:
        if os.environ.get(name):
            yield zlib.decompress(base64.b64decode(os.environ[name].encode())).decode()
