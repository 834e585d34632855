"""The cache of validated playbooks: hits skip the checks, and every key part invalidates it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from playbook_assets.core import catalog as catalog_module
from playbook_assets.core import catalog_cache
from playbook_assets.core.catalog import LoadedPlaybook, PlaybookCatalog, load_catalog
from playbook_assets.core.config import load_config_file
from playbook_assets.dagster_adapter.factory import build_definitions
from playbook_defs import TEMPLATES_DIR
from tests.conftest import Project

PLAYBOOK = """
playbook:
  id: big_accounts
  name: Big accounts
  parameters:
    - {name: min_arr, type: number, default: 50000}
  steps:
    - id: accounts
      type: query
      config:
        template: |
          SELECT account_id, segment, arr FROM analytics.accounts WHERE arr >= {{min_arr}}
    - id: by_segment
      type: aggregate
      config:
        input: "${steps.accounts}"
        group_by: [segment]
        metrics:
          - {name: total_arr, expression: "SUM(arr)"}
  outputs:
    - name: segments
      source: "${steps.by_segment}"
"""


class ValidationCount:
    """Counts full validations (the work a cache hit skips)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: list[str] = []
        real = catalog_module.validate_playbook

        def counting(loaded: LoadedPlaybook, config: object) -> None:
            self.calls.append(loaded.id)
            real(loaded, config)  # type: ignore[arg-type]

        monkeypatch.setattr(catalog_module, "validate_playbook", counting)


def load(project: Project) -> PlaybookCatalog:
    return load_catalog(load_config_file(project.config_path), [TEMPLATES_DIR], use_cache=True)


def test_a_second_load_validates_nothing_and_gives_the_same_playbooks(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    project.add_playbook("big_accounts.yaml", PLAYBOOK)
    first = load(project)
    count = ValidationCount(monkeypatch)
    second = load(project)
    assert count.calls == []
    assert sorted(second.playbooks) == sorted(first.playbooks)
    templates = [p for p in TEMPLATES_DIR.glob("*.yaml") if not p.name.endswith(".tests.yaml")]
    assert len(second.playbooks) == len(templates) + 1
    for playbook_id, loaded in first.playbooks.items():
        cached = second.playbooks[playbook_id]
        assert cached.spec == loaded.spec
        assert cached.document == loaded.document
        assert (cached.text, cached.sha256, cached.origin) == (
            loaded.text,
            loaded.sha256,
            loaded.origin,
        )


def test_a_cached_load_gives_identical_definitions(project: Project) -> None:
    project.add_playbook("big_accounts.yaml", PLAYBOOK)
    config = load_config_file(project.config_path)
    uncached = build_definitions(load_catalog(config, [TEMPLATES_DIR]), config)
    load_catalog(config, [TEMPLATES_DIR], use_cache=True)  # fills the cache
    assert catalog_cache.cache_path(config).exists()  # type: ignore[union-attr]
    cached = build_definitions(load_catalog(config, [TEMPLATES_DIR], use_cache=True), config)
    specs = {spec.key: spec for spec in cached.resolve_all_asset_specs()}
    expected = {spec.key: spec for spec in uncached.resolve_all_asset_specs()}
    assert len(expected) > 6
    assert specs == expected
    assert [job.name for job in cached.resolve_all_job_defs()] == [
        job.name for job in uncached.resolve_all_job_defs()
    ]
    assert sorted(str(key) for key in cached.resolve_asset_graph().asset_check_keys) == sorted(
        str(key) for key in uncached.resolve_asset_graph().asset_check_keys
    )


def test_an_edited_file_is_parsed_and_checked_again(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = project.add_playbook("big_accounts.yaml", PLAYBOOK)
    load(project)
    # Only the whole-playbook checks catch an unknown step: a stale entry would hide it.
    path.write_text(path.read_text().replace("${steps.by_segment}", "${steps.by_segmnt}"))
    count = ValidationCount(monkeypatch)
    catalog = load(project)
    assert count.calls == ["big_accounts"]
    assert "big_accounts" not in catalog.playbooks
    [broken] = [b for b in catalog.broken if b.playbook_id == "big_accounts"]
    assert "by_segmnt" in str(broken.error)


def test_a_changed_configuration_validates_again(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    project.add_playbook("big_accounts.yaml", PLAYBOOK)
    load(project)
    text = project.config_path.read_text().replace("retry_attempts: 1", "retry_attempts: 2")
    project.config_path.write_text(text)
    count = ValidationCount(monkeypatch)
    catalog = load(project)
    assert "big_accounts" in count.calls
    assert len(count.calls) == len(catalog.playbooks)


def test_a_changed_code_version_validates_again(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    project.add_playbook("big_accounts.yaml", PLAYBOOK)
    load(project)
    monkeypatch.setattr(catalog_cache, "code_version", lambda: "another version")
    count = ValidationCount(monkeypatch)
    catalog = load(project)
    assert sorted(count.calls) == sorted(catalog.playbooks)


def test_code_version_follows_the_modules(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A module edited in place (same package version) must change the code version.
    package = tmp_path / "playbook_assets"
    (package / "core").mkdir(parents=True)
    module = package / "core" / "validation.py"
    module.write_text("CHECKS = 1\n")
    monkeypatch.setattr(catalog_cache, "__file__", str(package / "core" / "catalog_cache.py"))
    before = catalog_cache.code_version()
    module.write_text("CHECKS = 22\n")
    assert catalog_cache.code_version() != before


def test_a_damaged_cache_file_falls_back_to_a_full_load(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    project.add_playbook("big_accounts.yaml", PLAYBOOK)
    load(project)
    path = catalog_cache.cache_path(load_config_file(project.config_path))
    assert path is not None
    path.write_text('{"format": 1, "entries": {"')
    count = ValidationCount(monkeypatch)
    catalog = load(project)
    assert "big_accounts" in count.calls
    assert "big_accounts" in catalog.playbooks
    assert json.loads(path.read_text())["entries"]  # written again, whole


def test_a_file_that_is_gone_leaves_the_cache(project: Project) -> None:
    path = project.add_playbook("big_accounts.yaml", PLAYBOOK)
    load(project)
    cache_file = catalog_cache.cache_path(load_config_file(project.config_path))
    assert cache_file is not None
    entries = len(json.loads(cache_file.read_text())["entries"])
    path.unlink()
    catalog = load(project)
    assert "big_accounts" not in catalog.playbooks
    assert len(json.loads(cache_file.read_text())["entries"]) == entries - 1


def test_a_cache_that_cannot_be_written_only_costs_speed(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    project.add_playbook("big_accounts.yaml", PLAYBOOK)
    # A file where the cache's folder should be: nothing can be written there.
    (project.config_path.parent / catalog_cache.CACHE_DIR_NAME).write_text("not a folder")
    assert "big_accounts" in load(project).playbooks
    count = ValidationCount(monkeypatch)
    assert "big_accounts" in load(project).playbooks
    assert "big_accounts" in count.calls


def _load_only(project: Project, only: set[str]) -> PlaybookCatalog:
    config = load_config_file(project.config_path)
    return load_catalog(config, [TEMPLATES_DIR], use_cache=True, only=only)


def test_a_load_for_some_ids_skips_the_others_and_leaves_the_cache(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What a run worker loads: the playbooks of the run's ids, as a full load gives them."""
    project.add_playbook("big_accounts.yaml", PLAYBOOK)
    full = load(project)
    cache_file = catalog_cache.cache_path(load_config_file(project.config_path))
    assert cache_file is not None
    before = cache_file.read_bytes()
    built: list[object] = []
    real = catalog_module.parse_playbook

    def counting(document: Any) -> Any:
        built.append(document)
        return real(document)

    monkeypatch.setattr(catalog_module, "parse_playbook", counting)

    some = _load_only(project, {"big_accounts", "presales_analysis"})

    assert sorted(some.playbooks) == ["big_accounts", "presales_analysis"]
    assert len(built) == 2  # the other templates' specs were not even built
    for playbook_id, loaded in some.playbooks.items():
        assert loaded.spec == full.playbooks[playbook_id].spec
        assert loaded.document == full.playbooks[playbook_id].document
    assert cache_file.read_bytes() == before  # the skipped entries are kept


def test_a_load_for_some_ids_still_loads_changed_and_broken_files(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file the cache does not hold as it is now is parsed, whatever id it has: a broken
    one is reported, an edited one may now have one of the ids asked for."""
    path = project.add_playbook("big_accounts.yaml", PLAYBOOK)
    broken = project.add_playbook("broken.yaml", PLAYBOOK.replace("big_accounts", "broken"))
    broken.write_text(broken.read_text().replace("${steps.by_segment}", "${steps.nope}"))
    load(project)
    path.write_text(path.read_text().replace("id: big_accounts", "id: renamed"))
    count = ValidationCount(monkeypatch)

    some = _load_only(project, {"renamed"})

    assert sorted(some.playbooks) == ["renamed"]
    assert sorted(count.calls) == ["broken", "renamed"]
    assert [b.playbook_id for b in some.broken] == ["broken"]


def test_a_custom_playbook_still_replaces_the_template_of_its_id(project: Project) -> None:
    text = (TEMPLATES_DIR / "presales_analysis.yaml").read_text()
    project.add_playbook("presales.yaml", text.replace("name: ", "name: Our ", 1))
    full = load(project)
    some = _load_only(project, {"presales_analysis"})
    assert some.playbooks["presales_analysis"].origin == "custom"
    assert some.playbooks["presales_analysis"].spec == full.playbooks["presales_analysis"].spec
    assert (
        some.replaced
        == full.replaced
        == {"presales_analysis": TEMPLATES_DIR / "presales_analysis.yaml"}
    )
