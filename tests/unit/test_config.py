"""The executor configuration: finding it, loading it, and building connection resources."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from playbook_assets.connections import registry
from playbook_assets.connections.crm.base import CrmResource
from playbook_assets.connections.crm.demo import DemoCrm
from playbook_assets.connections.registry import ConnectionType, build_resource
from playbook_assets.connections.warehouses.duckdb import DuckDBWarehouse
from playbook_assets.core.config import (
    ArtifactsConfig,
    DefaultsConfig,
    ExecutionConfig,
    embedded_config,
    find_config_path,
    load_config,
    load_config_file,
)
from playbook_assets.core.errors import ConfigError, PlaybookValidationError, SourceLocation
from tests.conftest import DemoFiles, write_config


class TokenCrm(CrmResource):
    """A CRM with a secret token and a plain text setting, registered only in these tests."""

    database: str
    token: str = ""
    region: str = "eu"


@pytest.fixture
def token_crm(monkeypatch: pytest.MonkeyPatch) -> None:
    """Register ``token_crm`` as a connection type (the registry's own extension point)."""
    monkeypatch.setitem(
        registry.CONNECTION_TYPES,
        "token_crm",
        ConnectionType("crm", TokenCrm, path_settings=("database",)),
    )


@pytest.fixture(autouse=True)
def _no_config_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PLAYBOOK_CONFIG", raising=False)


def _write(folder: Path, text: str, name: str = "playbook-executor.yaml") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


CONNECTIONS = """
playbook_executor:
  connections:
    duckdb:
      database: warehouse.duckdb
    demo:
      database: crm.duckdb
"""


# --------------------------------------------------------------------------- loading


def test_missing_sections_get_their_defaults(tmp_path: Path) -> None:
    path = _write(tmp_path, CONNECTIONS)
    config = load_config_file(path, environ={})
    assert config.path == path
    assert config.base_dir == tmp_path.resolve()
    assert config.defaults == DefaultsConfig(data_warehouse="duckdb", crm="demo")
    assert config.artifacts == ArtifactsConfig(
        enabled=True, directory="artifacts", retention_days=90
    )
    assert config.execution == ExecutionConfig(
        max_parallel_steps=3, timeout_seconds=300, retry_attempts=2
    )
    assert config.artifacts_dir == tmp_path.resolve() / "artifacts"
    assert config.playbooks_dir == tmp_path.resolve() / "playbooks"
    assert config.display_path == str(path)


def test_every_section_is_read(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        """
        playbook_executor:
          defaults:
            data_warehouse: lake
            crm: demo
          connections:
            lake:
              type: duckdb
              database: lake.duckdb
              threads: 2
            demo:
              database: crm.duckdb
          artifacts:
            enabled: false
            directory: /var/artifacts
            retention_days: 7
          execution:
            max_parallel_steps: 8
            timeout_seconds: 12.5
            retry_attempts: 0
        """,
    )
    config = load_config_file(path, environ={})
    assert config.defaults == DefaultsConfig(data_warehouse="lake", crm="demo")
    assert config.artifacts == ArtifactsConfig(
        enabled=False, directory="/var/artifacts", retention_days=7
    )
    assert config.execution == ExecutionConfig(
        max_parallel_steps=8, timeout_seconds=12.5, retry_attempts=0
    )
    assert config.artifacts_dir == Path("/var/artifacts")
    lake = config.connections["lake"]
    assert (lake.name, lake.type, dict(lake.settings)) == (
        "lake",
        "duckdb",
        {"database": "lake.duckdb", "threads": 2},
    )
    assert lake.location == SourceLocation(str(path), 6)
    assert dict(lake.setting_locations) == {
        "database": SourceLocation(str(path), 8),
        "threads": SourceLocation(str(path), 9),
    }
    # Without `type:`, the connection's name is its type.
    assert config.connections["demo"].type == "demo"


def test_the_conftest_config_loads(tmp_path: Path) -> None:
    demo = DemoFiles(warehouse=tmp_path / "w.duckdb", crm=tmp_path / "c.duckdb")
    path = write_config(tmp_path, demo)
    config = load_config_file(path, environ={})
    assert config.execution.retry_attempts == 1
    assert config.artifacts_dir.resolve() == (tmp_path / "artifacts").resolve()
    assert dict(config.connections["duckdb"].settings) == {"database": str(demo.warehouse)}


# --------------------------------------------------------------------------- ${VAR}

INTERPOLATED = """
playbook_executor:
  defaults:
    data_warehouse: ${WAREHOUSE:-duckdb}
    crm: ${CRM}
  connections:
    duckdb:
      database: ${DATA_DIR}/warehouse.duckdb
    demo:
      database: crm.duckdb
    hub:
      type: demo
      database: crm.duckdb
  artifacts:
    directory: ${ARTIFACTS_DIR:-store}/runs
    retention_days: ${RETENTION:-30}
  execution:
    max_parallel_steps: ${PARALLEL:-5}
    timeout_seconds: ${TIMEOUT}
"""


def test_variables_are_resolved_outside_connections(tmp_path: Path) -> None:
    path = _write(tmp_path, INTERPOLATED)
    config = load_config_file(path, environ={"CRM": "hub", "TIMEOUT": "42.5", "RETENTION": "9"})
    assert config.defaults == DefaultsConfig(data_warehouse="duckdb", crm="hub")
    assert config.artifacts.directory == "store/runs"
    assert config.artifacts.retention_days == 9
    assert config.execution.max_parallel_steps == 5
    assert config.execution.timeout_seconds == 42.5
    assert config.artifacts_dir == tmp_path.resolve() / "store" / "runs"
    # Connection blocks keep ${VAR} as written: DATA_DIR is not set, and the file still loads.
    assert config.connections["duckdb"].settings["database"] == "${DATA_DIR}/warehouse.duckdb"


def test_environment_value_wins_over_the_default(tmp_path: Path) -> None:
    path = _write(tmp_path, INTERPOLATED)
    config = load_config_file(
        path,
        environ={"CRM": "demo", "TIMEOUT": "1", "PARALLEL": "11", "ARTIFACTS_DIR": "/srv/a"},
    )
    assert config.execution.max_parallel_steps == 11
    assert config.artifacts_dir == Path("/srv/a/runs")
    assert config.defaults.crm == "demo"


def test_missing_variable_names_it_and_its_line(tmp_path: Path) -> None:
    path = _write(tmp_path, INTERPOLATED)
    with pytest.raises(ConfigError) as info:
        load_config_file(path, environ={"CRM": "demo"})
    assert str(info.value) == (
        f"{path}:18: environment variable TIMEOUT is not set; "
        "set TIMEOUT, or write ${TIMEOUT:-default} in the config"
    )
    with pytest.raises(ConfigError) as info:
        load_config_file(path, environ={"TIMEOUT": "1"})
    assert str(info.value) == (
        f"{path}:4: environment variable CRM is not set; "
        "set CRM, or write ${CRM:-default} in the config"
    )


def test_an_interpolated_value_is_still_validated(tmp_path: Path) -> None:
    path = _write(tmp_path, INTERPOLATED)
    with pytest.raises(ConfigError) as info:
        load_config_file(path, environ={"CRM": "demo", "TIMEOUT": "soon"})
    assert str(info.value) == (
        f"{path}:18: field 'execution.timeout_seconds': "
        "Input should be a valid number, unable to parse string as a number"
    )


# --------------------------------------------------------------------------- invalid files


def test_unknown_key_in_execution_suggests_the_closest(tmp_path: Path) -> None:
    path = _write(tmp_path, CONNECTIONS + "  execution:\n    retry_atempts: 3\n")
    with pytest.raises(ConfigError) as info:
        load_config_file(path, environ={})
    assert str(info.value) == (
        f"{path}:8: field 'execution.retry_atempts': unknown key 'retry_atempts'; "
        "did you mean 'retry_attempts'?"
    )
    assert info.value.location == SourceLocation(str(path), 8)
    assert info.value.field == "execution.retry_atempts"


def test_unknown_section_suggests_the_closest(tmp_path: Path) -> None:
    path = _write(tmp_path, CONNECTIONS + "  artefacts:\n    directory: x\n")
    with pytest.raises(ConfigError) as info:
        load_config_file(path, environ={})
    assert str(info.value) == (
        f"{path}:7: field 'artefacts': unknown key 'artefacts'; did you mean 'artifacts'?"
    )


def test_unknown_key_without_a_close_name_lists_the_valid_ones(tmp_path: Path) -> None:
    path = _write(tmp_path, CONNECTIONS + "  defaults:\n    zzz: 1\n")
    with pytest.raises(ConfigError) as info:
        load_config_file(path, environ={})
    assert str(info.value) == (
        f"{path}:8: field 'defaults.zzz': unknown key 'zzz'; valid keys: crm, data_warehouse"
    )


def test_out_of_range_value(tmp_path: Path) -> None:
    path = _write(tmp_path, CONNECTIONS + "  execution:\n    max_parallel_steps: 0\n")
    with pytest.raises(ConfigError) as info:
        load_config_file(path, environ={})
    assert str(info.value) == (
        f"{path}:8: field 'execution.max_parallel_steps': "
        "Input should be greater than or equal to 1"
    )


def test_unknown_top_level_key(tmp_path: Path) -> None:
    path = _write(tmp_path, CONNECTIONS + "execution:\n  retry_attempts: 1\n")
    with pytest.raises(ConfigError) as info:
        load_config_file(path, environ={})
    assert str(info.value) == (
        f"{path}:7: unknown key 'execution' at the top level; "
        "everything goes under 'playbook_executor:'"
    )


@pytest.mark.parametrize(
    "text",
    ["", "# only a comment\n", "executor:\n  defaults: {}\n", "- playbook_executor\n"],
)
def test_root_key_missing(tmp_path: Path, text: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config_file(path, environ={})
    assert str(info.value) == (
        f"{path}:1: the config file must have a single root key 'playbook_executor:'"
    )


def test_root_must_be_a_mapping(tmp_path: Path) -> None:
    path = _write(tmp_path, "# executor\nplaybook_executor: [a]\n")
    with pytest.raises(ConfigError) as info:
        load_config_file(path, environ={})
    assert str(info.value) == f"{path}:2: 'playbook_executor' must be a mapping"


def test_default_crm_must_name_a_defined_connection(tmp_path: Path) -> None:
    path = _write(tmp_path, CONNECTIONS + "  defaults:\n    crm: dem\n")
    with pytest.raises(ConfigError) as info:
        load_config_file(path, environ={})
    assert str(info.value) == (
        f"{path}:8: defaults.crm names connection 'dem', which is not defined; did you mean 'demo'?"
    )


def test_default_warehouse_must_name_a_defined_connection(tmp_path: Path) -> None:
    path = _write(tmp_path, CONNECTIONS + "  defaults:\n    data_warehouse: snowflake\n")
    with pytest.raises(ConfigError) as info:
        load_config_file(path, environ={})
    assert str(info.value) == (
        f"{path}:8: defaults.data_warehouse names connection 'snowflake', which is not "
        "defined; valid connections: demo, duckdb"
    )


def test_duplicate_key_in_the_config_is_rejected(tmp_path: Path) -> None:
    path = _write(
        tmp_path, CONNECTIONS + "  execution:\n    retry_attempts: 1\n    retry_attempts: 2\n"
    )
    with pytest.raises(PlaybookValidationError) as info:
        load_config_file(path, environ={})
    assert str(info.value) == (
        f"{path}:9: duplicate key 'retry_attempts' (first defined on line 8); remove one of them"
    )


def test_connection_type_must_be_text(tmp_path: Path) -> None:
    path = _write(tmp_path, CONNECTIONS + "    other:\n      type: [duckdb]\n")
    with pytest.raises(ConfigError) as info:
        load_config_file(path, environ={})
    assert str(info.value) == f"{path}:7: 'type' must be a connection type name"


# --------------------------------------------------------------------------- finding the file


def test_find_config_path_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert find_config_path() is None

    default = _write(tmp_path / "config", CONNECTIONS)
    assert find_config_path() == Path("config") / "playbook-executor.yaml"
    assert (tmp_path / "config" / "playbook-executor.yaml") == default

    from_env = _write(tmp_path / "env", CONNECTIONS, name="env.yaml")
    monkeypatch.setenv("PLAYBOOK_CONFIG", str(from_env))
    assert find_config_path() == from_env

    explicit = _write(tmp_path / "cli", CONNECTIONS, name="cli.yaml")
    assert find_config_path(explicit) == explicit
    assert find_config_path(str(explicit)) == explicit


def test_explicit_config_that_does_not_exist(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    _write(tmp_path / "config", CONNECTIONS)
    missing = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError) as info:
        find_config_path(missing)
    assert str(info.value) == f"config file not found: {missing}; check the path given by --config"

    monkeypatch.setenv("PLAYBOOK_CONFIG", str(missing))
    with pytest.raises(ConfigError) as info:
        load_config()
    assert str(info.value) == (
        f"config file not found: {missing}; check the path given by $PLAYBOOK_CONFIG"
    )


def test_no_config_means_embedded_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    config = load_config(environ={})
    assert config.path is None
    assert config.display_path == "(embedded defaults)"
    assert config.base_dir == tmp_path
    assert config == embedded_config(tmp_path)
    assert {name: c.type for name, c in config.connections.items()} == {
        "duckdb": "duckdb",
        "demo": "demo",
    }
    assert config.artifacts_dir == tmp_path / "artifacts"
    warehouse = build_resource(config, "duckdb", environ={})
    assert isinstance(warehouse, DuckDBWarehouse)
    assert warehouse.database == str(tmp_path / "data" / "warehouse.duckdb")
    assert warehouse.demo_data is True
    crm = build_resource(config, "demo", environ={})
    assert isinstance(crm, DemoCrm)
    assert crm.database == str(tmp_path / "data" / "demo_crm.duckdb")


def test_load_config_uses_the_default_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _write(tmp_path / "config", CONNECTIONS + "  execution:\n    retry_attempts: 4\n")
    monkeypatch.chdir(tmp_path)
    config = load_config(environ={})
    assert config.execution.retry_attempts == 4
    assert config.base_dir == (tmp_path / "config").resolve()
    assert config.base_dir.is_absolute()


def test_relative_paths_follow_the_config_file_not_the_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    deployment = tmp_path / "deploy" / "config"
    path = _write(
        deployment,
        CONNECTIONS + "  artifacts:\n    directory: ../artifacts\n",
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    config = load_config(path, environ={})
    assert config.artifacts_dir.resolve() == (tmp_path / "deploy" / "artifacts").resolve()
    warehouse = build_resource(config, "duckdb", environ={})
    assert isinstance(warehouse, DuckDBWarehouse)
    assert warehouse.database == str(deployment.resolve() / "warehouse.duckdb")
    assert config.playbooks_dir == deployment.resolve() / "playbooks"


# --------------------------------------------------------------------------- build_resource

RESOURCES = """
playbook_executor:
  connections:
    duckdb:
      database: ${DATA_DIR:-data}/warehouse.duckdb
      demo_scale: ${SCALE:-0.5}
    demo:
      database: ${CRM_FILE}
    mem:
      type: duckdb
      database: ":memory:"
    abs:
      type: duckdb
      database: /srv/w.duckdb
"""


def test_partial_variables_are_resolved_and_paths_made_absolute(tmp_path: Path) -> None:
    config = load_config_file(_write(tmp_path, RESOURCES), environ={})
    warehouse = build_resource(config, "duckdb", environ={})
    assert isinstance(warehouse, DuckDBWarehouse)
    assert warehouse.database == str(tmp_path.resolve() / "data" / "warehouse.duckdb")
    assert warehouse.demo_scale == 0.5

    warehouse = build_resource(config, "duckdb", environ={"DATA_DIR": "/mnt/d", "SCALE": "2"})
    assert isinstance(warehouse, DuckDBWarehouse)
    assert warehouse.database == "/mnt/d/warehouse.duckdb"
    assert warehouse.demo_scale == 2.0


def test_a_whole_variable_in_a_path_setting_is_resolved_now(tmp_path: Path) -> None:
    config = load_config_file(_write(tmp_path, RESOURCES), environ={})
    crm = build_resource(config, "demo", environ={"CRM_FILE": "crm/c.duckdb"})
    assert isinstance(crm, DemoCrm)
    assert crm.database == str(tmp_path.resolve() / "crm" / "c.duckdb")


def test_a_missing_variable_fails_when_the_connection_is_built(tmp_path: Path) -> None:
    path = _write(tmp_path, RESOURCES)
    config = load_config_file(path, environ={})
    with pytest.raises(ConfigError) as info:
        build_resource(config, "demo", environ={})
    assert str(info.value) == (
        f"{path}:7: environment variable CRM_FILE is not set; "
        "set CRM_FILE, or write ${CRM_FILE:-default} in the config"
    )


def test_memory_and_absolute_databases_are_kept(tmp_path: Path) -> None:
    config = load_config_file(_write(tmp_path, RESOURCES), environ={})
    memory = build_resource(config, "mem", environ={})
    absolute = build_resource(config, "abs", environ={})
    assert isinstance(memory, DuckDBWarehouse)
    assert isinstance(absolute, DuckDBWarehouse)
    assert memory.database == ":memory:"
    assert absolute.database == "/srv/w.duckdb"


def test_unknown_setting_suggests_the_closest(tmp_path: Path) -> None:
    path = _write(tmp_path, CONNECTIONS.replace("database: warehouse", "databse: warehouse"))
    config = load_config_file(path, environ={})
    with pytest.raises(ConfigError) as info:
        build_resource(config, "duckdb", environ={})
    assert str(info.value) == (
        f"{path}:4: unknown setting 'databse' for a duckdb connection; did you mean 'database'?"
    )


def test_unknown_connection_type_suggests_the_closest(tmp_path: Path) -> None:
    path = _write(tmp_path, CONNECTIONS + "    lake:\n      type: duckbd\n      database: x\n")
    config = load_config_file(path, environ={})
    with pytest.raises(ConfigError) as info:
        build_resource(config, "lake", environ={})
    assert str(info.value) == (
        f"{path}:7: connection 'lake' has unknown type 'duckbd'; did you mean 'duckdb'?"
    )


def test_unknown_connection_type_lists_the_known_ones(tmp_path: Path) -> None:
    path = _write(
        tmp_path, CONNECTIONS + "    ora:\n      type: oracle\n      password: ${ORA_PW}\n"
    )
    # The secret is not set on this machine: the config still loads.
    config = load_config_file(path, environ={})
    assert config.connections["ora"].settings == {"password": "${ORA_PW}"}
    with pytest.raises(ConfigError) as info:
        build_resource(config, "ora", environ={})
    assert str(info.value) == (
        f"{path}:7: connection 'ora' has unknown type 'oracle'; "
        f"valid connection types: {', '.join(sorted(registry.CONNECTION_TYPES))}"
    )


def test_invalid_setting_value(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        CONNECTIONS.replace("database: crm.duckdb", "database: crm.duckdb\n      scale: big"),
    )
    config = load_config_file(path, environ={})
    with pytest.raises(ConfigError) as info:
        build_resource(config, "demo", environ={})
    assert str(info.value) == (
        f"{path}:7: invalid setting 'scale' for connection 'demo': "
        "Input should be a valid number, unable to parse string as a number"
    )


SECRETS = """
playbook_executor:
  connections:
    duckdb:
      database: w.duckdb
    demo:
      database: crm.duckdb
    hub:
      type: token_crm
      database: hub.duckdb
      token: ${HUB_TOKEN}
      region: ${HUB_REGION:-us}
    bearer:
      type: token_crm
      database: hub.duckdb
      token: Bearer ${HUB_TOKEN}
"""


@pytest.mark.usefixtures("token_crm")
def test_text_settings_keep_their_templates_until_a_run_opens_the_connection(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HUB_TOKEN", raising=False)
    monkeypatch.delenv("HUB_REGION", raising=False)
    config = load_config_file(_write(tmp_path, SECRETS), environ={})
    # Built although HUB_TOKEN is not set: the secret is read when the resource is opened.
    crm = build_resource(config, "hub", environ={"HUB_TOKEN": "from-environ"})
    assert isinstance(crm, TokenCrm)
    assert crm.token == "${HUB_TOKEN}"
    assert crm.region == "${HUB_REGION:-us}"
    assert crm.database == str(tmp_path.resolve() / "hub.duckdb")

    monkeypatch.setenv("HUB_TOKEN", "s3cret")
    initialized = crm.process_config_and_initialize()
    assert (initialized.token, initialized.region) == ("s3cret", "us")


@pytest.mark.usefixtures("token_crm")
def test_a_secret_inside_text_is_resolved_only_when_opened(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _write(tmp_path, SECRETS)
    config = load_config_file(path, environ={})
    crm = build_resource(config, "bearer", environ={"HUB_TOKEN": "abc"})
    assert isinstance(crm, TokenCrm)
    assert crm.token == "Bearer ${HUB_TOKEN}"
    monkeypatch.setenv("HUB_TOKEN", "abc")
    assert crm.process_config_and_initialize().token == "Bearer abc"
    monkeypatch.delenv("HUB_TOKEN")
    opened = crm.process_config_and_initialize()
    assert opened.token == "Bearer ${HUB_TOKEN}"
    with pytest.raises(ConfigError) as info:
        opened.raise_if_unresolved("bearer")
    assert str(info.value) == (
        "connection 'bearer', setting 'token': environment variable HUB_TOKEN is not set; "
        "set HUB_TOKEN, or write ${HUB_TOKEN:-default} in the config"
    )


def test_a_whole_variable_in_a_number_setting(tmp_path: Path) -> None:
    # `threads: ${DUCKDB_THREADS}` is an ordinary config; an int setting cannot hold a
    # template (text), so the connection must still build, with the number from the env.
    path = _write(
        tmp_path,
        CONNECTIONS.replace(
            "database: warehouse.duckdb", "database: w.duckdb\n      threads: ${DUCKDB_THREADS}"
        ),
    )
    config = load_config_file(path, environ={})
    warehouse = build_resource(config, "duckdb", environ={"DUCKDB_THREADS": "2"})
    assert isinstance(warehouse, DuckDBWarehouse)
    assert warehouse.threads == 2


def test_a_number_setting_with_a_default(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        CONNECTIONS.replace(
            "database: warehouse.duckdb", "database: w.duckdb\n      threads: ${DUCKDB_THREADS:-3}"
        ),
    )
    config = load_config_file(path, environ={})
    warehouse = build_resource(config, "duckdb", environ={})
    assert isinstance(warehouse, DuckDBWarehouse)
    assert warehouse.threads == 3
