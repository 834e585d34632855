"""Fixtures for the PostgreSQL and Redshift tests: one throwaway server per test session and
xdist worker, and the demo warehouse loaded into it once."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from playbook_assets.connections.warehouses.postgres import PostgresWarehouse
from standins.postgres_server import (
    PostgresNotInstalledError,
    PostgresServer,
    start_server,
    stop_server,
)
from tests.conftest import DemoFiles
from tests.postgres_demo import DEMO_DATABASE, load_demo_database


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A running PostgreSQL cluster on 127.0.0.1, stopped at the end of the session."""
    try:
        server = start_server()
    except PostgresNotInstalledError as e:
        pytest.fail(str(e), pytrace=False)
    try:
        yield server
    finally:
        stop_server(server)


@pytest.fixture(scope="session")
def postgres_demo(postgres_server: PostgresServer, demo_files: DemoFiles) -> PostgresServer:
    """The server with a ``demo`` database holding every table of the demo warehouse."""
    warehouse = PostgresWarehouse(
        host=postgres_server.host,
        port=postgres_server.port,
        user="postgres",
        database=DEMO_DATABASE,
    )
    load_demo_database(postgres_server, demo_files, warehouse, DEMO_DATABASE)
    return postgres_server
