"""Benchmark: a run launched as the UI launches it, with 1000 playbooks loaded against 6.

Two ``dagster dev`` servers run side by side on the project's instance settings and the
demo data (scale 1): one whose code location holds the 6 built-in templates, one holding
them and 994 generated playbooks (``bench.load``'s). ``presales_analysis`` is launched
through GraphQL as "Materialize all" in its asset group does (the implicit asset job, its
assets selected), alternately on each server, and timed from submit until the run's status
is SUCCESS (polled every 50 ms): the queue, the daemon, the run worker's process, its load
of the code location and the run. One untimed launch per server first.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import yaml
from dagster_graphql import DagsterGraphQLClient

from bench.common import (
    PYTHON,
    ROOT,
    Options,
    Row,
    dagster_home,
    demo_data_dir,
    median,
    write_config,
)
from bench.load import generate_playbooks

PLAYBOOK = "presales_analysis"
LOCATION = "playbook_defs"
LARGE = 1000
TARGET_RATIO = 1.5
SERVE_TIMEOUT_S = 600.0
RUN_TIMEOUT_S = 600.0
FINISHED = {"SUCCESS", "FAILURE", "CANCELED"}
_LOCATIONS = (
    "query { workspaceOrError { ... on Workspace { locationEntries { name loadStatus "
    "locationOrLoadError { __typename ... on PythonError { message } } } } } }"
)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _location_loaded(port: int) -> bool:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql",
        data=json.dumps({"query": _LOCATIONS}).encode(),
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            entries = json.load(response)["data"]["workspaceOrError"]["locationEntries"]
    except (urllib.error.URLError, OSError, KeyError, TypeError, ValueError):
        return False
    for entry in entries:
        if entry["name"] == LOCATION and entry["loadStatus"] == "LOADED":
            error = entry["locationOrLoadError"] or {}
            if error.get("__typename") == "PythonError":
                raise RuntimeError(f"code location failed to load: {error['message']}")
            return True
    return False


@contextlib.contextmanager
def dagster_dev(config: Path, home: Path) -> Iterator[DagsterGraphQLClient]:
    """``dagster dev`` for ``config`` on a free port; every process it started is stopped
    on exit. A session of its own: in the background it otherwise ignores SIGTERM."""
    port = _free_port()
    log = home / "dagster-dev.log"
    command = [str(Path(PYTHON).with_name("dagster")), "dev", "-w", "workspace.yaml"]
    command += ["-h", "127.0.0.1", "-p", str(port)]
    env = {k: v for k, v in os.environ.items() if k != "DAGSTER_POSTGRES_URL"}
    env |= {"DAGSTER_HOME": str(home), "PLAYBOOK_CONFIG": str(config)}
    with log.open("wb") as out:
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + SERVE_TIMEOUT_S
        while not _location_loaded(port):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"dagster dev did not serve:\n{log.read_text()[-3000:]}")
            time.sleep(0.5)
        yield DagsterGraphQLClient("127.0.0.1", port_number=port, timeout=120)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


def _asset_selection() -> list[list[str]]:
    template = yaml.safe_load(
        (ROOT / "playbook_defs" / "templates" / f"{PLAYBOOK}.yaml").read_text()
    )
    spec = template["playbook"]
    names = [step["id"] for step in spec["steps"]]
    names += [output["name"] for output in spec.get("outputs", [])]
    return [[PLAYBOOK, name] for name in [*names, "run_report"]]


def launch(client: DagsterGraphQLClient) -> float:
    """Submit-to-success seconds of one launch of the playbook's assets."""
    started = time.monotonic()
    run_id = client.submit_job_execution(
        "__ASSET_JOB",
        repository_location_name=LOCATION,
        repository_name="__repository__",
        asset_selection=_asset_selection(),
    )
    while True:
        status = client.get_run_status(run_id).value
        elapsed = time.monotonic() - started
        if status in FINISHED:
            if status != "SUCCESS":
                raise RuntimeError(f"run {run_id} ended {status}")
            return elapsed
        if elapsed > RUN_TIMEOUT_S:
            raise RuntimeError(f"run {run_id} still {status} after {elapsed:.0f} s")
        time.sleep(0.05)


def run(options: Options) -> list[Row]:
    """One row: the launch with 1000 playbooks loaded against the same with 6."""
    repeats = options.repeats(5, 3)
    data = demo_data_dir(1)
    folder = ROOT / "playbook_defs" / "templates"
    # The templates' own tests (*.tests.yaml) beside them are not playbooks.
    templates = len(set(folder.glob("*.yaml")) - set(folder.glob("*.tests.yaml")))
    with tempfile.TemporaryDirectory(prefix="bench-launch-") as tmp:
        small_config = write_config(Path(tmp) / "small", data)
        large_config = write_config(Path(tmp) / "large", data)
        generate_playbooks(large_config.parent / "playbooks", LARGE - templates)
        small_home = dagster_home(Path(tmp) / "small_home")
        large_home = dagster_home(Path(tmp) / "large_home")
        with (
            dagster_dev(small_config, small_home) as small,
            dagster_dev(large_config, large_home) as large,
        ):
            launch(small)  # warm-up: the instance's storage, first imports
            launch(large)
            small_s: list[float] = []
            large_s: list[float] = []
            for _ in range(repeats):  # interleaved
                time.sleep(1.0)  # the previous run's process exits
                small_s.append(launch(small))
                time.sleep(1.0)
                large_s.append(launch(large))
    seconds, baseline = median(large_s), median(small_s)
    return [
        Row(
            "UI launch",
            f"{PLAYBOOK}, submit to success, {LARGE} playbooks loaded",
            seconds,
            f"the same launch with {templates} playbooks",
            baseline,
            f"<= {TARGET_RATIO:g}x",
            seconds <= TARGET_RATIO * baseline,
            None,
            repeats,
            f"{LARGE}: {', '.join(f'{s:.1f}' for s in large_s)} s; "
            f"{templates}: {', '.join(f'{s:.1f}' for s in small_s)} s",
        )
    ]
