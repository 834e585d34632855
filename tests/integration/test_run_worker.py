"""A process Dagster starts to execute one run builds only the playbooks that run selected
(``dagster_adapter.run_worker``), and anything it cannot be sure of builds everything.

The run is real (created on a real SQLite instance, or executed by Dagster's multiprocess
executor, whose step process loads the code location itself); the launch arguments are built
with Dagster's own types, as ``dagster api execute_run`` receives them. The code server's run
process (``dagster dev``) is covered end to end in tests/e2e/test_ui.py.
"""

from __future__ import annotations

import base64
import sys
import zlib
from collections.abc import Iterator

import dagster as dg
import pytest
from dagster._core.definitions.definitions_load_context import (
    DefinitionsLoadContext,
    DefinitionsLoadType,
)
from dagster._core.definitions.reconstruct import ReconstructableRepository
from dagster._grpc.types import ExecuteRunArgs
from dagster._serdes import serialize_value

from playbook_assets.dagster_adapter.code_location import build_code_location
from playbook_assets.dagster_adapter.run_config import ASSET_JOB
from playbook_defs import TEMPLATES_DIR
from tests.conftest import Project

PLAYBOOK = "presales_analysis"
TEMPLATE_IDS = sorted(path.stem for path in TEMPLATES_DIR.glob("*.yaml") if "." not in path.stem)


def _recon_repository() -> ReconstructableRepository:
    return ReconstructableRepository.for_module("playbook_defs.definitions", "defs")


@pytest.fixture
def location(project: Project, monkeypatch: pytest.MonkeyPatch) -> Iterator[dg.Definitions]:
    """The product's code location on the project (every template), as the code server
    builds it."""
    monkeypatch.setenv("PLAYBOOK_CONFIG", str(project.config_path))
    monkeypatch.setattr(sys, "argv", ["pytest"])
    yield build_code_location([TEMPLATES_DIR], config_path=str(project.config_path))


def _playbooks_of(defs: dg.Definitions) -> set[str]:
    keys = defs.resolve_asset_graph().get_all_asset_keys()
    return {key.path[0] for key in keys}


def _create_run(
    defs: dg.Definitions, instance: dg.DagsterInstance, keys: list[dg.AssetKey], job: str
) -> dg.DagsterRun:
    if job == ASSET_JOB:
        job_def = defs.resolve_implicit_global_asset_job_def().get_subset(asset_selection=set(keys))
        return instance.create_run_for_job(job_def, asset_selection=frozenset(keys))
    return instance.create_run_for_job(defs.resolve_job_def(job))


def _launch_args(run: dg.DagsterRun, instance: dg.DagsterInstance) -> str:
    """What ``dagster api execute_run`` receives for ``run`` (its JSON argument)."""
    origin = _recon_repository().get_reconstructable_job(run.job_name).get_python_origin()
    args = ExecuteRunArgs(job_origin=origin, run_id=run.run_id, instance_ref=instance.get_ref())
    return serialize_value(args)


def _reconstructed(project: Project) -> dg.Definitions:
    context = DefinitionsLoadContext(DefinitionsLoadType.RECONSTRUCTION)
    with DefinitionsLoadContext.scoped(context):
        return build_code_location([TEMPLATES_DIR], config_path=str(project.config_path))


def _engine_messages(instance: dg.DagsterInstance, run_id: str) -> list[str]:
    return [
        record.dagster_event.message or ""
        for record in instance.all_logs(run_id)
        if record.dagster_event is not None
        and record.dagster_event.event_type == dg.DagsterEventType.ENGINE_EVENT
    ]


def _playbook_keys(defs: dg.Definitions, playbook_id: str) -> list[dg.AssetKey]:
    return [
        key for key in defs.resolve_asset_graph().get_all_asset_keys() if key.path[0] == playbook_id
    ]


@pytest.mark.parametrize("given_as", ["argument", "variable", "compressed variable"])
def test_an_execute_run_process_builds_only_the_selected_playbook(
    project: Project,
    location: dg.Definitions,
    monkeypatch: pytest.MonkeyPatch,
    given_as: str,
) -> None:
    assert len(_playbooks_of(location)) == len(TEMPLATE_IDS) > 1
    instance = dg.DagsterInstance.get()
    run = _create_run(location, instance, _playbook_keys(location, PLAYBOOK), ASSET_JOB)
    text = _launch_args(run, instance)
    if given_as == "argument":
        monkeypatch.setattr(sys, "argv", ["dagster", "api", "execute_run", text])
    elif given_as == "variable":
        monkeypatch.setenv("DAGSTER_EXECUTE_RUN_ARGS", text)
    else:
        compressed = base64.b64encode(zlib.compress(text.encode())).decode()
        monkeypatch.setenv("DAGSTER_COMPRESSED_EXECUTE_RUN_ARGS", compressed)

    defs = _reconstructed(project)

    assert _playbooks_of(defs) == {PLAYBOOK}
    # The run's job resolves in the smaller location to the same steps and assets.
    job = defs.resolve_implicit_global_asset_job_def().get_subset(
        asset_selection=set(run.asset_selection or ())
    )
    assert {node.name for node in job.nodes} == {PLAYBOOK}
    assert job.asset_layer.selected_asset_keys == run.asset_selection
    assert f"Built only the playbooks this run selected: {PLAYBOOK}." in (
        _engine_messages(instance, run.run_id)
    )


def test_a_run_of_two_playbooks_builds_both(
    project: Project, location: dg.Definitions, monkeypatch: pytest.MonkeyPatch
) -> None:
    instance = dg.DagsterInstance.get()
    other = next(pid for pid in TEMPLATE_IDS if pid != PLAYBOOK)
    keys = _playbook_keys(location, PLAYBOOK) + _playbook_keys(location, other)[:1]
    run = _create_run(location, instance, keys, ASSET_JOB)
    monkeypatch.setenv("DAGSTER_EXECUTE_RUN_ARGS", _launch_args(run, instance))

    assert _playbooks_of(_reconstructed(project)) == {PLAYBOOK, other}


def _everything(project: Project, location: dg.Definitions) -> None:
    defs = _reconstructed(project)
    assert _playbooks_of(defs) == _playbooks_of(location)
    assert {job.name for job in defs.resolve_all_job_defs()} == {
        job.name for job in location.resolve_all_job_defs()
    }


def test_the_code_server_s_own_load_builds_everything(
    project: Project, location: dg.Definitions, monkeypatch: pytest.MonkeyPatch
) -> None:
    instance = dg.DagsterInstance.get()
    run = _create_run(location, instance, _playbook_keys(location, PLAYBOOK), ASSET_JOB)
    monkeypatch.setenv("DAGSTER_EXECUTE_RUN_ARGS", _launch_args(run, instance))
    # An initialization (the code server, `dagster definitions validate`), not a run worker.
    defs = build_code_location([TEMPLATES_DIR], config_path=str(project.config_path))
    assert _playbooks_of(defs) == _playbooks_of(location)


@pytest.mark.parametrize("case", ["prune job", "whole asset job", "unknown run", "not json"])
def test_a_run_it_cannot_be_sure_of_builds_everything(
    project: Project, location: dg.Definitions, monkeypatch: pytest.MonkeyPatch, case: str
) -> None:
    instance = dg.DagsterInstance.get()
    if case == "prune job":
        job = next(job.name for job in location.resolve_all_job_defs() if job.name != ASSET_JOB)
        text = _launch_args(_create_run(location, instance, [], job), instance)
    elif case == "whole asset job":
        run = instance.create_run_for_job(location.resolve_implicit_global_asset_job_def())
        text = _launch_args(run, instance)
    elif case == "unknown run":
        run = _create_run(location, instance, _playbook_keys(location, PLAYBOOK), ASSET_JOB)
        text = _launch_args(run, instance).replace(run.run_id, "0" * 36)
    else:
        text = "{not json"
    monkeypatch.setenv("DAGSTER_EXECUTE_RUN_ARGS", text)
    _everything(project, location)


def test_an_asset_that_is_not_a_playbook_s_builds_everything(
    project: Project, location: dg.Definitions, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run that also selects an asset of the user's own (a key not laid out as a
    playbook's) may need anything from the location."""

    @dg.asset(key=["team", "extra", "table"])
    def extra() -> None:
        return None

    combined = dg.Definitions.merge(location, dg.Definitions(assets=[extra]))
    instance = dg.DagsterInstance.get()
    keys = [*_playbook_keys(location, PLAYBOOK), extra.key]
    run = _create_run(combined, instance, keys, ASSET_JOB)
    monkeypatch.setenv("DAGSTER_EXECUTE_RUN_ARGS", _launch_args(run, instance))
    _everything(project, location)


def test_a_multiprocess_step_process_builds_only_its_playbook(
    project: Project, location: dg.Definitions
) -> None:
    """Dagster's multiprocess executor runs the playbook's op in a process of its own, which
    loads the code location again (a real run, real child process)."""
    text = project.config_path.read_text().replace(
        "retry_attempts: 1", "retry_attempts: 1\n    executor: multiprocess"
    )
    project.config_path.write_text(text)
    keys = _playbook_keys(location, PLAYBOOK)
    job = _recon_repository().get_reconstructable_job(ASSET_JOB)
    instance = dg.DagsterInstance.get()

    result = dg.execute_job(job, instance, asset_selection=keys)

    assert result.success
    materialized = {event.asset_key for event in result.all_events if event.is_step_materialization}
    assert materialized == set(keys)
    messages = _engine_messages(instance, result.run_id)
    built = [m for m in messages if m.startswith("Built ")]
    # One step (the playbook's op), one step process, which built that playbook alone.
    assert built == [f"Built only the playbooks this run selected: {PLAYBOOK}."]


def test_a_run_worker_builds_its_playbooks_once_for_dagster_s_two_loads(
    project: Project, location: dg.Definitions, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Dagster loads the code location twice in a run's process (the plan, then the run):
    the second load gets the definitions the first built; another run gets its own."""
    from playbook_assets.dagster_adapter.component import PlaybookCollectionComponent

    component = PlaybookCollectionComponent(
        templates=[str(TEMPLATES_DIR / "*.yaml")], config=str(project.config_path)
    )
    instance = dg.DagsterInstance.get()
    other = next(pid for pid in TEMPLATE_IDS if pid != PLAYBOOK)
    built: list[dg.Definitions] = []
    for playbook_id in (PLAYBOOK, PLAYBOOK, other):
        if not built or playbook_id != PLAYBOOK:
            keys = _playbook_keys(location, playbook_id)
            run = _create_run(location, instance, keys, ASSET_JOB)
            monkeypatch.setenv("DAGSTER_EXECUTE_RUN_ARGS", _launch_args(run, instance))
        context = DefinitionsLoadContext(DefinitionsLoadType.RECONSTRUCTION)
        with DefinitionsLoadContext.scoped(context):
            built.append(component.build_collection(project.root))

    assert built[0] is built[1]
    assert _playbooks_of(built[0]) == {PLAYBOOK}
    assert _playbooks_of(built[2]) == {other}


def test_a_run_whose_playbook_no_longer_loads_builds_everything(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The run's playbook file was broken after the launch: the run worker cannot build it
    alone, so it builds the whole location (where the broken file shows as such)."""
    from playbook_assets.dagster_adapter.component import PlaybookCollectionComponent

    text = (TEMPLATES_DIR / f"{PLAYBOOK}.yaml").read_text()
    path = project.add_playbook("copy.yaml", text.replace(f"id: {PLAYBOOK}", "id: copy", 1))
    monkeypatch.setattr(sys, "argv", ["pytest"])
    location = build_code_location([TEMPLATES_DIR], config_path=str(project.config_path))
    assert "copy" in _playbooks_of(location)
    component = PlaybookCollectionComponent(
        templates=[str(TEMPLATES_DIR / "*.yaml")], config=str(project.config_path), strict=False
    )
    instance = dg.DagsterInstance.get()
    run = _create_run(location, instance, _playbook_keys(location, "copy"), ASSET_JOB)
    monkeypatch.setenv("DAGSTER_EXECUTE_RUN_ARGS", _launch_args(run, instance))
    path.write_text(path.read_text().replace("${steps.", "${steps.missing_", 1))

    context = DefinitionsLoadContext(DefinitionsLoadType.RECONSTRUCTION)
    with DefinitionsLoadContext.scoped(context):
        defs = component.build_collection(project.root)

    assert set(TEMPLATE_IDS) <= _playbooks_of(defs)
    assert not [m for m in _engine_messages(instance, run.run_id) if m.startswith("Built ")]
