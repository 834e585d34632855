"""Operating playbooks in Dagster: the UI end to end (`dagster dev` on loopback, a run of
presales_analysis launched through the GraphQL API, its asset graph page in headless Chromium)
and the instance storage (SQLite by default, PostgreSQL with DAGSTER_POSTGRES_URL, tested on a
real throwaway server).

Playwright drives the system Chromium (``/usr/bin/chromium``, installed by
``scripts/install-test-services``): browser downloads are not possible here.

``python -m tests.e2e.test_ui --launches 5`` measures submit-to-success of launched runs with the
instance settings of ``dagster_home/dagster.yaml`` on the embedded default (see README,
"Operating").
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pytest
import yaml
from dagster_graphql import DagsterGraphQLClient
from psycopg import sql

from playbook_assets.app.cli import main as playbook_main
from playbook_assets.core.errors import ConfigError
from playbook_assets.dagster_adapter.instance import POSTGRES_URL_ENV, resolve_dagster_home
from playbook_assets.dagster_adapter.run_config import ASSET_JOB
from playbook_defs import TEMPLATES_DIR
from standins.postgres_server import PostgresServer
from tests.conftest import Project

pytest_plugins = ["tests.conftest_postgres"]

REPO_ROOT = Path(__file__).resolve().parents[2]
INSTANCE_SETTINGS = REPO_ROOT / "dagster_home" / "dagster.yaml"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
LOCATION = "playbook_defs"
REPOSITORY = "__repository__"
PLAYBOOK = "presales_analysis"
STEPS = ("open_deals", "account_health", "combine_results")
SERVE_TIMEOUT_S = 90.0
RUN_TIMEOUT_S = 120.0
FINISHED = {"SUCCESS", "FAILURE", "CANCELED"}

_LOCATIONS_QUERY = """
query {
  workspaceOrError {
    __typename
    ... on Workspace {
      locationEntries {
        name
        loadStatus
        locationOrLoadError { __typename ... on PythonError { message } }
      }
    }
  }
}
"""


@dataclass(frozen=True)
class DagsterDev:
    """A running ``dagster dev``: its port, Dagster home and log file."""

    port: int
    home: Path
    log: Path

    @property
    def url(self) -> str:
        """The UI's base URL."""
        return f"http://127.0.0.1:{self.port}"

    def client(self) -> DagsterGraphQLClient:
        """A GraphQL client for this server."""
        return DagsterGraphQLClient("127.0.0.1", port_number=self.port, timeout=60)

    def log_tail(self, chars: int = 4000) -> str:
        """The end of the server's log, for failure messages."""
        return self.log.read_text(encoding="utf-8", errors="replace")[-chars:]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _descendants(pid: int) -> set[int]:
    """Every process below ``pid`` (read from /proc), so cleanup can reach processes that
    left the process group."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The command name (field 2) is in parentheses and may contain spaces.
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(parent, []).append(int(entry.name))
    found: set[int] = set()
    stack = [pid]
    while stack:
        for child in children.get(stack.pop(), []):
            if child not in found:
                found.add(child)
                stack.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _stop(process: subprocess.Popen[bytes], grace_s: float = 20.0) -> None:
    """Stop ``dagster dev`` and everything it started: SIGTERM to its process group (it
    shuts its webserver, daemon and code server down), then SIGKILL whatever is left."""
    tree = _descendants(process.pid)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline and (process.poll() is None or any(map(_alive, tree))):
        time.sleep(0.2)
    tree |= _descendants(process.pid)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    for pid in tree:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    process.wait(timeout=10)


def _graphql(url: str, query: str) -> dict:
    request = urllib.request.Request(
        f"{url}/graphql",
        data=json.dumps({"query": query}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


def _wait_until_served(dev: DagsterDev, process: subprocess.Popen[bytes]) -> None:
    """Wait for /server_info, then for the code location to be loaded."""
    deadline = time.monotonic() + SERVE_TIMEOUT_S
    while True:
        if process.poll() is not None:
            raise AssertionError(f"dagster dev exited ({process.returncode}):\n{dev.log_tail()}")
        if time.monotonic() > deadline:
            raise AssertionError(
                f"dagster dev not ready in {SERVE_TIMEOUT_S:.0f} s:\n{dev.log_tail()}"
            )
        try:
            with urllib.request.urlopen(f"{dev.url}/server_info", timeout=2) as response:
                response.read()
            entries = _graphql(dev.url, _LOCATIONS_QUERY)["data"]["workspaceOrError"]
        except (urllib.error.URLError, OSError, KeyError, TypeError):
            time.sleep(0.25)
            continue
        entry = next((e for e in entries.get("locationEntries", []) if e["name"] == LOCATION), None)
        if entry is not None and entry["loadStatus"] == "LOADED":
            location = entry["locationOrLoadError"] or {}
            if location.get("__typename") == "PythonError":
                raise AssertionError(f"code location failed to load: {location['message']}")
            return
        time.sleep(0.25)


@contextlib.contextmanager
def dagster_dev(home: Path, cwd: Path, env: Mapping[str, str], log: Path) -> Iterator[DagsterDev]:
    """``dagster dev -w workspace.yaml`` on a free loopback port with ``home`` as the
    instance, stopped (with every process it started) on exit, even on failure.

    It runs in a session of its own: started in the background from a non-interactive
    shell, ``dagster dev`` otherwise ignores SIGINT and SIGTERM.
    """
    port = _free_port()
    dev = DagsterDev(port=port, home=home, log=log)
    dagster = Path(sys.executable).with_name("dagster")
    command = [str(dagster), "dev", "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)]
    with log.open("wb") as out:
        process = subprocess.Popen(
            command,
            cwd=cwd,
            env={**env, "DAGSTER_HOME": str(home)},
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        _wait_until_served(dev, process)
        yield dev
    finally:
        _stop(process)


def launch_and_wait(dev: DagsterDev, timeout_s: float = RUN_TIMEOUT_S) -> tuple[str, str, float]:
    """Launch presales_analysis through GraphQL; its run id, final status and the seconds from
    submit to that status (polled every 50 ms)."""
    client = dev.client()
    started = time.monotonic()
    # What "Materialize all" in the playbook's asset group launches.
    run_id = client.submit_job_execution(
        ASSET_JOB,
        repository_location_name=LOCATION,
        repository_name=REPOSITORY,
        asset_selection=[key.path for key in _playbook_keys()],
    )
    while True:
        status = client.get_run_status(run_id).value
        elapsed = time.monotonic() - started
        if status in FINISHED or elapsed > timeout_s:
            return run_id, status, elapsed
        time.sleep(0.05)


def _playbook_keys() -> list[dg.AssetKey]:
    template = yaml.safe_load((TEMPLATES_DIR / f"{PLAYBOOK}.yaml").read_text())["playbook"]
    names = [step["id"] for step in template["steps"]]
    names += [output["name"] for output in template.get("outputs", [])]
    return [dg.AssetKey([PLAYBOOK, name]) for name in [*names, "run_report"]]


def _run_failure(home: Path, run_id: str) -> str:
    instance = dg.DagsterInstance.from_config(str(home))
    try:
        messages = [
            f"{record.dagster_event.event_type_value}: {record.user_message}"
            for record in instance.all_logs(run_id)
            if record.dagster_event is not None and record.dagster_event.is_failure
        ]
    finally:
        instance.dispose()
    return "\n".join(messages)


def _dev_env(project: Project) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "DAGSTER_POSTGRES_URL"}
    env["PLAYBOOK_CONFIG"] = str(project.config_path)
    return env


def test_launch_from_graphql_and_see_the_asset_graph(project: Project, tmp_path: Path) -> None:
    """A run launched through the API succeeds and the UI shows the playbook's asset graph."""
    from playwright.sync_api import expect, sync_playwright

    assert CHROMIUM.is_file(), f"{CHROMIUM} is missing: run scripts/install-test-services"
    shutil.copyfile(INSTANCE_SETTINGS, project.dagster_home / "dagster.yaml")
    screenshot = tmp_path / "asset-graph.png"

    with dagster_dev(
        project.dagster_home, REPO_ROOT, _dev_env(project), tmp_path / "dagster-dev.log"
    ) as dev:
        run_id, status, seconds = launch_and_wait(dev)
        assert status == "SUCCESS", (
            f"run {run_id} ended {status} after {seconds:.1f} s:\n"
            f"{_run_failure(dev.home, run_id)}\n{dev.log_tail()}"
        )

        # The run materialized every step and the run report, on the instance the UI reads.
        instance = dg.DagsterInstance.from_config(str(dev.home))
        try:
            for name in (*STEPS, "run_report"):
                event = instance.get_latest_materialization_event(dg.AssetKey([PLAYBOOK, name]))
                assert event is not None, f"{name} was not materialized"
                assert event.run_id == run_id
            # The code server's run process built only the playbook the run selected.
            built = [
                record.dagster_event.message
                for record in instance.all_logs(run_id)
                if record.dagster_event is not None
                and (record.dagster_event.message or "").startswith("Built ")
            ]
            assert built == [f"Built only the playbooks this run selected: {PLAYBOOK}."]
        finally:
            instance.dispose()
        # The run report, not the manifest beside it (run_<id>.manifest.json).
        (report_path,) = [
            path for path in project.artifacts_dir.glob("run_*.json") if path.suffixes == [".json"]
        ]
        report = json.loads(report_path.read_text(encoding="utf-8"))
        assert report["dagster_run_id"] == run_id
        assert [step["step_id"] for step in report["steps"]] == list(STEPS)

        with sync_playwright() as playwright:
            browser = playwright.chromium.launch_persistent_context(
                str(tmp_path / "chromium-profile"),
                executable_path=str(CHROMIUM),
                headless=True,
                args=CHROMIUM_ARGS,
                viewport={"width": 1600, "height": 1000},
            )
            try:
                page = browser.new_page()
                page.goto(
                    f"{dev.url}/locations/{REPOSITORY}@{LOCATION}/asset-groups/{PLAYBOOK}",
                    wait_until="domcontentloaded",
                )
                for name in (*STEPS, "run_report"):
                    expect(page.get_by_text(name, exact=True).first).to_be_visible(timeout=30_000)
                # Each node's latest materialization loads after the graph itself.
                expect(page.get_by_text(re.compile(r"^Loading"))).to_have_count(0, timeout=30_000)
                expect(page.get_by_text("Materialized").first).to_be_visible()
                page.screenshot(path=str(screenshot))
            finally:
                browser.close()

    print(f"asset graph screenshot: {screenshot}")  # noqa: T201
    assert screenshot.stat().st_size > 10_000


# ---------------------------------------------------------------------------------------------
# Instance storage


def test_instance_home_is_sqlite_home_without_postgres_url(tmp_path: Path) -> None:
    home = tmp_path / "home"
    assert resolve_dagster_home({"DAGSTER_HOME": str(home)}) == home
    assert home.is_dir()
    assert not (home / "postgres").exists()


def test_instance_home_for_postgres_keeps_settings_and_writes_no_secret(tmp_path: Path) -> None:
    shutil.copyfile(INSTANCE_SETTINGS, tmp_path / "dagster.yaml")
    url = "postgresql://dagster:s3cret@db.example:5432/dagster"
    env = {"DAGSTER_HOME": str(tmp_path), POSTGRES_URL_ENV: url}

    home = resolve_dagster_home(env)

    assert home == tmp_path / "postgres"
    text = (home / "dagster.yaml").read_text(encoding="utf-8")
    assert url not in text
    expected = yaml.safe_load(INSTANCE_SETTINGS.read_text(encoding="utf-8"))
    expected["storage"] = {"postgres": {"postgres_url": {"env": POSTGRES_URL_ENV}}}
    assert yaml.safe_load(text) == expected
    # Resolving again (e.g. DAGSTER_HOME already pointing at the generated home) is stable.
    assert resolve_dagster_home({**env, "DAGSTER_HOME": str(home)}) == home
    assert resolve_dagster_home(env) == home


def test_instance_home_with_its_own_storage_is_used_as_is(tmp_path: Path) -> None:
    (tmp_path / "dagster.yaml").write_text(
        "storage:\n  sqlite:\n    base_dir: /srv/dagster\n", encoding="utf-8"
    )
    env = {"DAGSTER_HOME": str(tmp_path), POSTGRES_URL_ENV: "postgresql://x@y/z"}
    assert resolve_dagster_home(env) == tmp_path


def test_instance_home_with_broken_settings_names_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "dagster.yaml").write_text("telemetry:\n  enabled: [false\n", encoding="utf-8")
    env = {"DAGSTER_HOME": str(tmp_path), POSTGRES_URL_ENV: "postgresql://x@y/z"}
    with pytest.raises(ConfigError, match=r"dagster\.yaml:\d+: invalid YAML"):
        resolve_dagster_home(env)


def test_playbook_run_stores_runs_and_events_in_postgres(
    project: Project,
    postgres_server: PostgresServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    database = f"dagster_{os.getpid()}_{time.monotonic_ns()}"
    with postgres_server.connect() as connection:
        connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
    url = f"postgresql://postgres@{postgres_server.host}:{postgres_server.port}/{database}"
    monkeypatch.setenv(POSTGRES_URL_ENV, url)

    code = playbook_main(["run", PLAYBOOK, "--json", "--config", str(project.config_path)])

    report = json.loads(capsys.readouterr().out)
    assert code == 0, report
    run_id = report["dagster_run_id"]
    with postgres_server.connect(database) as connection:
        runs = connection.execute("SELECT run_id, pipeline_name, status FROM runs").fetchall()
        materialized = connection.execute(
            "SELECT asset_key FROM event_logs"
            " WHERE run_id = %s AND dagster_event_type = 'ASSET_MATERIALIZATION'",
            (run_id,),
        ).fetchall()
        step_successes = connection.execute(
            "SELECT count(*) FROM event_logs"
            " WHERE run_id = %s AND dagster_event_type = 'STEP_SUCCESS'",
            (run_id,),
        ).fetchone()
    assert runs == [(run_id, ASSET_JOB, "SUCCESS")]
    keys = {dg.AssetKey.from_db_string(key) for (key,) in materialized}
    assert {dg.AssetKey([PLAYBOOK, name]) for name in (*STEPS, "run_report")} <= keys
    assert step_successes is not None and step_successes[0] == 1  # one op per playbook
    # Nothing went to SQLite beside the settings; the instance the UI would use lists the run.
    assert not (project.dagster_home / "history").exists()
    instance = dg.DagsterInstance.from_config(str(project.dagster_home / "postgres"))
    try:
        assert [run.run_id for run in instance.get_runs()] == [run_id]
    finally:
        instance.dispose()


def benchmark(launches: int, settings: Path) -> list[float]:
    """Submit-to-success seconds of ``launches`` runs of presales_analysis launched through
    GraphQL against ``dagster dev`` on the embedded default with the instance ``settings``,
    after one warm-up run. Uses ``./config`` and ``./data`` of the repository."""
    home = Path(tempfile.mkdtemp(prefix="playbook-launch-bench-"))
    try:
        shutil.copyfile(settings, home / "dagster.yaml")
        env = {k: v for k, v in os.environ.items() if k not in {"DAGSTER_POSTGRES_URL"}}
        with dagster_dev(home, REPO_ROOT, env, home / "dagster-dev.log") as dev:
            seconds: list[float] = []
            for attempt in range(launches + 1):
                time.sleep(1.5)  # let the previous run's process exit
                run_id, status, elapsed = launch_and_wait(dev)
                if status != "SUCCESS":
                    raise SystemExit(f"run {run_id} ended {status}:\n{dev.log_tail()}")
                if attempt:
                    seconds.append(elapsed)
                sys.stdout.write(f"{'warm-up' if not attempt else attempt}: {elapsed:.2f} s\n")
        return seconds
    finally:
        shutil.rmtree(home, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    """Print the median submit-to-success time of launched runs (see ``benchmark``)."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--launches", type=int, default=5)
    parser.add_argument("--settings", type=Path, default=INSTANCE_SETTINGS)
    args = parser.parse_args(argv)
    seconds = benchmark(args.launches, args.settings)
    sys.stdout.write(
        f"median {statistics.median(seconds):.2f} s over {len(seconds)} launches: "
        f"{', '.join(f'{s:.2f}' for s in seconds)}\n"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
