"""Databricks SQL as the data warehouse, through databricks-sql-connector (an optional extra)."""

from __future__ import annotations

import importlib
import threading
import warnings
from typing import Any, ClassVar

import pyarrow as pa
from pydantic import Field

from playbook_assets.connections.kit.deadline import cancel_after, limit_text, step_timeout
from playbook_assets.connections.kit.errors import mapped_errors
from playbook_assets.connections.warehouses.base import WarehouseResource
from playbook_assets.core.errors import (
    SourceUnreachableError,
    TerminalStepError,
    TransientStepError,
)
from playbook_assets.core.redaction import redact

INSTALL_HINT = 'install it with: pip install "playbook-executor[databricks]"'


def _connector() -> Any:
    """The ``databricks.sql`` module, or a TerminalStepError saying how to install it."""
    try:
        return importlib.import_module("databricks.sql")
    except ImportError as e:
        raise TerminalStepError(
            "the Databricks connection needs databricks-sql-connector, which is not installed",
            hint=INSTALL_HINT,
        ) from e


with warnings.catch_warnings():
    # The config key is ``schema`` (as in the connector); it shadows pydantic's deprecated
    # ``BaseModel.schema()``, which nothing here uses.
    warnings.filterwarnings("ignore", message='Field name "schema"', category=UserWarning)

    class DatabricksWarehouse(WarehouseResource):
        """A Databricks SQL warehouse, queried with databricks-sql-connector.

        The connector is an optional extra (``pip install "playbook-executor[databricks]"``)
        imported only when a query runs. Results come back as Arrow
        (``cursor.fetchall_arrow()``). When ``timeout_seconds`` passes, the running statement
        is cancelled with ``cursor.cancel()`` and the step fails with ``StepTimeoutError``.

        Read-only: Databricks SQL has no read-only session; the SQL is checked as a single
        read-only statement before it is sent, and the token's principal should only hold
        SELECT (and USE CATALOG/SCHEMA) grants.
        """

        dialect: ClassVar[str] = "databricks"
        kind: ClassVar[str] = "databricks"

        server_hostname: str = Field(
            description="Workspace host name, e.g. 'dbc-1234.cloud.databricks.com'."
        )
        http_path: str = Field(description="HTTP path of the SQL warehouse.")
        access_token: str = Field(description="Personal access token (use ${ENV_VAR}).")
        catalog: str | None = Field(default=None, description="Default catalog.")
        schema: str | None = Field(default=None, description="Default schema.")  # pyright: ignore[reportIncompatibleMethodOverride]

        def run_query(self, sql: str, *, timeout_seconds: float | None = None) -> pa.Table:
            """Run ``sql`` and return its result as Arrow; cancel it past ``timeout_seconds``."""
            sql_module = _connector()
            try:
                connection = sql_module.connect(
                    server_hostname=self.server_hostname,
                    http_path=self.http_path,
                    access_token=self.access_token,
                    catalog=self.catalog,
                    schema=self.schema,
                )
            except Exception as e:
                raise SourceUnreachableError(
                    f"cannot connect to Databricks at {self.server_hostname}: "
                    f"{type(e).__name__}: {_first_line(e)}",
                    hint="check server_hostname, http_path and the access token",
                ) from e
            try:
                cursor = connection.cursor()
                try:
                    with cancel_after(timeout_seconds, cursor.cancel) as timed_out:
                        with mapped_errors(lambda e: _classify(e, timeout_seconds, timed_out)):
                            cursor.execute(sql)
                            return cursor.fetchall_arrow()
                finally:
                    cursor.close()
            finally:
                connection.close()

        def load_table(self, name: str, table: pa.Table) -> None:
            """Not supported yet for Databricks: load the demo data with Databricks tools."""
            raise TerminalStepError(
                f"loading a table ({name}) into Databricks is not supported",
                hint="upload the data with Databricks' own tools (e.g. COPY INTO from a volume)",
            )


def _classify(
    error: Exception, timeout_seconds: float | None, timed_out: threading.Event
) -> Exception:
    """The error mapping: past the time limit when the cancel fired; transient for
    throttling, 5xx and dropped connections; terminal otherwise."""
    if timed_out.is_set():
        return step_timeout(
            f"the query ran longer than {limit_text(timeout_seconds)} and was cancelled"
        )
    text = _first_line(error)
    name = type(error).__name__
    transient_words = ("429", "503", "502", "504", "temporarily", "connection reset", "throttl")
    if name in {"OperationalError", "RequestError"} or any(
        w in text.lower() for w in transient_words
    ):
        return TransientStepError(f"Databricks failed for a passing reason: {name}: {text}")
    return TerminalStepError(f"Databricks rejected the query: {text}")


def _first_line(error: Exception) -> str:
    text = redact(str(error)).strip()
    return text.splitlines()[0] if text else type(error).__name__
