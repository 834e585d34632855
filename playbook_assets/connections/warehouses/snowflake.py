"""Snowflake as the data warehouse, through dagster-snowflake's ``SnowflakeResource``."""

from __future__ import annotations

import math
import re
import tempfile
import time
import uuid
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar

import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import Field

from playbook_assets.connections.kit.deadline import limit_text, step_timeout
from playbook_assets.connections.warehouses.base import WarehouseResource, typed_empty
from playbook_assets.core.errors import (
    SourceUnreachableError,
    TerminalStepError,
    TransientStepError,
)
from playbook_assets.core.redaction import redact

# Snowflake error numbers (the connector's ``errno``) that decide how a failure is reported.
_CANCELLED = 604  # "SQL execution canceled" (our abort after the deadline)
_STATEMENT_TIMEOUT = 630  # STATEMENT_TIMEOUT_IN_SECONDS reached on the server
_TIMEOUT_ERRNOS = frozenset({_CANCELLED, _STATEMENT_TIMEOUT})
_UNREACHABLE_ERRNOS = frozenset({250001, 250003})  # failed to connect / failed to request
_TRANSIENT_ERRNOS = frozenset(
    {
        390114,  # authentication token expired
        390111,  # session no longer exists
        429,  # throttled
        502,
        503,
        504,
        250002,  # connection is closed (dropped mid-query)
    }
)

_LINE_PATTERNS = (
    re.compile(r"\bline (\d+) at position (\d+)", re.IGNORECASE),  # Snowflake compilation errors
    re.compile(r"\bLine (\d+), Col: (\d+)"),  # sqlglot-style positions (fakesnow)
    re.compile(r"\bLINE (\d+):"),
)
_OBJECT_PATTERNS = (
    re.compile(r"Object '([^']+)' does not exist", re.IGNORECASE),
    re.compile(r"Table with name (\S+) does not exist", re.IGNORECASE),
    re.compile(r"invalid identifier '([^']+)'", re.IGNORECASE),
)
_PLAIN_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]*$")


def _arrow_type_sql(data_type: pa.DataType) -> str:
    """The Snowflake column type for an Arrow type (used by ``load_table``)."""
    if pa.types.is_boolean(data_type):
        return "BOOLEAN"
    if pa.types.is_integer(data_type):
        return "NUMBER(38,0)"
    if pa.types.is_floating(data_type):
        return "FLOAT"
    if pa.types.is_decimal(data_type):
        assert isinstance(data_type, pa.Decimal128Type | pa.Decimal256Type)
        return f"NUMBER({min(data_type.precision, 38)},{data_type.scale})"
    if pa.types.is_date(data_type):
        return "DATE"
    if pa.types.is_timestamp(data_type):
        assert isinstance(data_type, pa.TimestampType)
        return "TIMESTAMP_TZ" if data_type.tz else "TIMESTAMP_NTZ"
    if pa.types.is_time(data_type):
        return "TIME"
    if pa.types.is_binary(data_type) or pa.types.is_large_binary(data_type):
        return "BINARY"
    if pa.types.is_string(data_type) or pa.types.is_large_string(data_type):
        return "VARCHAR"
    if pa.types.is_dictionary(data_type):
        assert isinstance(data_type, pa.DictionaryType)
        return _arrow_type_sql(data_type.value_type)
    raise TerminalStepError(
        f"cannot load a column of Arrow type {data_type} into Snowflake",
        hint="cast the column to a string, number, date, timestamp or boolean first",
    )


def _plain_name(part: str, what: str) -> str:
    """An unquoted Snowflake identifier (folded to upper case, as Snowflake does)."""
    if not _PLAIN_NAME.match(part):
        raise TerminalStepError(
            f"invalid {what} name '{part}' for Snowflake",
            hint="use letters, digits and underscores, starting with a letter",
        )
    return part.upper()


def _line_of_error(sql: str, message: str) -> int | None:
    """The 1-based line of ``sql`` a Snowflake error message points at, when it says."""
    for pattern in _LINE_PATTERNS:
        found = pattern.search(message)
        if found:
            return int(found.group(1))
    for pattern in _OBJECT_PATTERNS:
        found = pattern.search(message)
        if found:
            name = found.group(1).strip("\"'").split(".")[-1].strip('"')
            word = re.compile(rf"(?<![\w$]){re.escape(name)}(?![\w$])", re.IGNORECASE)
            for number, text in enumerate(sql.splitlines(), start=1):
                if word.search(text):
                    return number
    return None


def _terminal(sql: str, error: Exception, message: str) -> TerminalStepError:
    line = _line_of_error(sql, message)
    where = ""
    if line is not None:
        lines = sql.splitlines()
        text = lines[line - 1].strip() if 0 < line <= len(lines) else ""
        where = f" (line {line} of the query: {text})" if text else f" (line {line} of the query)"
    first = redact(" ".join(message.split()))
    return TerminalStepError(f"Snowflake rejected the query: {first}{where}")


def _lowercase_folded(table: pa.Table) -> pa.Table:
    """Lower-case column names Snowflake upper-cased (unquoted identifiers)."""
    names = [name.lower() if name == name.upper() else name for name in table.column_names]
    return table.rename_columns(names) if names != table.column_names else table


with warnings.catch_warnings():
    # A field named ``schema`` shadows pydantic's deprecated ``BaseModel.schema()``; the config
    # key users write is ``schema`` (as in dagster-snowflake), so keep the name and the quiet.
    warnings.filterwarnings("ignore", message='Field name "schema"', category=UserWarning)

    class SnowflakeWarehouse(WarehouseResource):
        """Snowflake, queried with the official connector through dagster-snowflake.

        A ``SnowflakeResource`` is built from these fields for each query and its
        ``get_connection()`` opens the connector session; results come back as Arrow
        (``fetch_arrow_all``), never through pandas.

        Authentication: ``password``, or key-pair with ``private_key`` (PEM text, e.g. from an
        environment variable) or ``private_key_path`` (+ ``passphrase`` when encrypted), or an
        ``authenticator`` (``externalbrowser``, ``oauth``, ...).

        Timeouts: the session's ``STATEMENT_TIMEOUT_IN_SECONDS`` is set to the step's time limit
        (rounded up to whole seconds) and the connector's own query timer sends Snowflake's
        abort request when the deadline passes (the documented client-side cancel, the same as
        ``SYSTEM$CANCEL_QUERY``), so the query does not keep running on the warehouse.

        Read-only: Snowflake has no read-only session flag. Read-only access rests on the
        playbook's SQL being checked as a single read-only statement before it is sent
        (``sql.ensure_read_only``) and on the grants of the ``role`` used: give it SELECT
        only.

        Snowflake folds unquoted identifiers to upper case; with ``lowercase_columns`` (the
        default) result columns named in all upper case are returned in lower case, so a
        playbook reads the same column names on every warehouse.
        """

        dialect: ClassVar[str] = "snowflake"
        kind: ClassVar[str] = "snowflake"

        account: str = Field(description="Account identifier, e.g. 'myorg-myaccount'.")
        user: str = Field(description="User login name.")
        password: str | None = Field(
            default=None, description="Password (use ${ENV_VAR}); or use key-pair auth."
        )
        private_key: str | None = Field(
            default=None, description="PEM private key text for key-pair auth (use ${ENV_VAR})."
        )
        private_key_path: str | None = Field(
            default=None, description="Path of a PEM private key file for key-pair auth."
        )
        passphrase: str | None = Field(
            default=None, description="Passphrase of an encrypted private key (use ${ENV_VAR})."
        )
        authenticator: str | None = Field(
            default=None,
            description="Connector authenticator, e.g. 'externalbrowser' or 'oauth' (optional).",
        )
        warehouse: str | None = Field(default=None, description="Virtual warehouse to run on.")
        role: str | None = Field(
            default=None, description="Role to use; give it SELECT grants only for read-only use."
        )
        database: str | None = Field(default=None, description="Default database.")
        schema: str | None = Field(default=None, description="Default schema.")  # pyright: ignore[reportIncompatibleMethodOverride]
        host: str | None = Field(
            default=None,
            description="Host to connect to instead of <account>.snowflakecomputing.com "
            "(private link, or a local test server).",
        )
        port: int | None = Field(default=None, description="Port (default 443).")
        protocol: str | None = Field(default=None, description="'https' (default) or 'http'.")
        login_timeout: int = Field(
            default=60, ge=1, description="Seconds to keep trying to log in before giving up."
        )
        network_timeout: int | None = Field(
            default=None, ge=1, description="Seconds the connector waits on one request."
        )
        session_parameters: dict[str, Any] = Field(
            default_factory=dict,
            description="Extra Snowflake session parameters, e.g. {QUERY_TAG: playbooks}.",
        )
        lowercase_columns: bool = Field(
            default=True,
            description="Return all-upper-case result column names (unquoted identifiers) "
            "in lower case.",
        )

        def run_query(self, sql: str, *, timeout_seconds: float | None = None) -> pa.Table:
            """Run ``sql`` and return its result as Arrow.

            With ``timeout_seconds`` the statement is aborted on the server when it runs
            longer (``StepTimeoutError``).
            """
            whole_seconds = math.ceil(timeout_seconds) if timeout_seconds else None
            started = time.monotonic()
            with self._connection(whole_seconds) as connection:
                cursor = connection.cursor()
                try:
                    cursor.execute(sql, timeout=whole_seconds)
                    table = cursor.fetch_arrow_all(force_return_table=True)
                    table = typed_empty(table, cursor.description)
                except Exception as e:
                    timed_out = (
                        timeout_seconds is not None
                        and time.monotonic() - started >= timeout_seconds
                    )
                    raise self._classify(e, sql, timeout_seconds, timed_out) from e
                finally:
                    cursor.close()
            return _lowercase_folded(table) if self.lowercase_columns else table

        def load_table(self, name: str, table: pa.Table) -> None:
            """Create or replace the table ``schema.table`` from Arrow.

            The schema is created when missing. The rows go the way Snowflake bulk-loads: a
            Parquet file is PUT to a temporary stage and copied (``COPY INTO ...
            MATCH_BY_COLUMN_NAME``) into a loading table, which then replaces the target in
            one statement (``CREATE OR REPLACE TABLE ... AS SELECT``), so readers see the old
            table or the new one, never a half-loaded one. The temporary stage goes with the
            session. Names are unquoted (upper case in Snowflake), like the tables the
            templates query.
            """
            parts = name.split(".")
            if len(parts) != 2:
                raise TerminalStepError(
                    f"table name '{name}' must be 'schema.table'", hint="e.g. analytics.accounts"
                )
            schema, base = (
                _plain_name(part, what)
                for part, what in zip(parts, ["schema", "table"], strict=True)
            )
            target = f"{schema}.{base}"
            loading = f"{schema}.{base}__PLAYBOOK_LOADING"
            stage = f"PLAYBOOK_LOAD_{uuid.uuid4().hex[:12].upper()}"
            columns = ", ".join(
                f"{_plain_name(field.name, 'column')} {_arrow_type_sql(field.type)}"
                for field in table.schema
            )
            statements_before = [
                f"CREATE SCHEMA IF NOT EXISTS {schema}",
                f"CREATE OR REPLACE TEMPORARY STAGE {schema}.{stage}",
                f"CREATE OR REPLACE TABLE {loading} ({columns})",
            ]
            with tempfile.TemporaryDirectory() as folder, self._connection(None) as connection:
                path = Path(folder) / "data.parquet"
                pq.write_table(table, path)
                cursor = connection.cursor()
                sql = ""
                try:
                    for sql in [
                        *statements_before,
                        f"PUT '{path.as_uri()}' @{schema}.{stage} AUTO_COMPRESS=FALSE",
                        f"COPY INTO {loading} FROM @{schema}.{stage} FILE_FORMAT=(TYPE=PARQUET) "
                        "MATCH_BY_COLUMN_NAME=CASE_INSENSITIVE PURGE=TRUE",
                        f"CREATE OR REPLACE TABLE {target} AS SELECT * FROM {loading}",
                        f"DROP TABLE IF EXISTS {loading}",
                    ]:
                        cursor.execute(sql)
                except Exception as e:
                    raise self._classify(e, sql, None, False) from e
                finally:
                    cursor.close()

        @contextmanager
        def _connection(self, statement_timeout: int | None) -> Iterator[Any]:
            """A connector session, closed on every path."""
            from dagster_snowflake import SnowflakeResource

            parameters: dict[str, Any] = dict(self.session_parameters)
            if statement_timeout is not None:
                parameters["STATEMENT_TIMEOUT_IN_SECONDS"] = statement_timeout
            extra: dict[str, Any] = {"session_parameters": parameters}
            for key in ("host", "port", "protocol", "network_timeout"):
                value = getattr(self, key)
                if value is not None:
                    extra[key] = value
            settings: dict[str, Any] = {
                "account": self.account,
                "user": self.user,
                "password": self.password,
                "private_key": self.private_key,
                "private_key_path": self.private_key_path,
                "private_key_password": self.passphrase,
                "authenticator": self.authenticator,
                "warehouse": self.warehouse,
                "role": self.role,
                "database": self.database,
                "schema": self.schema,
                "login_timeout": self.login_timeout,
                "additional_snowflake_connection_args": extra,
            }
            try:
                resource = SnowflakeResource(
                    **{key: value for key, value in settings.items() if value is not None}
                )
            except Exception as e:  # dagster's check.invariant on the auth settings
                raise TerminalStepError(
                    "invalid Snowflake connection settings: give exactly one of password, "
                    "private_key or private_key_path (or an authenticator)"
                ) from e
            try:
                manager = resource.get_connection()
                connection = manager.__enter__()
            except Exception as e:
                raise self._classify_connect(e) from e
            try:
                yield connection
            except BaseException:
                # SnowflakeResource.get_connection closes the session only on success.
                connection.close()
                raise
            manager.__exit__(None, None, None)

        def _classify_connect(self, error: Exception) -> Exception:
            from snowflake.connector import errors as sf

            where = self.host or f"{self.account}.snowflakecomputing.com"
            errno = getattr(error, "errno", None)
            if errno in _TRANSIENT_ERRNOS:
                return TransientStepError(f"Snowflake login failed: {_first_line(error)}")
            login_refused = isinstance(errno, int) and 390000 <= errno < 391000
            if login_refused or isinstance(error, sf.ProgrammingError | sf.ForbiddenError):
                return TerminalStepError(
                    f"Snowflake refused the login to {where}: {_first_line(error)}",
                    hint="check the account, user, role and credentials of the connection",
                )
            return SourceUnreachableError(
                f"cannot reach Snowflake at {where}: {_first_line(error)}",
                hint="check the account/host setting and the network, then retry",
            )

        def _classify(
            self, error: Exception, sql: str, timeout_seconds: float | None, timed_out: bool
        ) -> Exception:
            from snowflake.connector import errors as sf

            if isinstance(error, TerminalStepError | TransientStepError):
                return error
            errno = getattr(error, "errno", None)
            if errno in _TIMEOUT_ERRNOS or (timed_out and isinstance(error, sf.Error)):
                return step_timeout(
                    f"the query ran longer than {limit_text(timeout_seconds)} and was "
                    "cancelled in Snowflake"
                )
            retryable_http = (
                sf.ServiceUnavailableError,
                sf.GatewayTimeoutError,
                sf.InternalServerError,
                sf.BadGatewayError,
                sf.TooManyRequests,
                sf.OtherHTTPRetryableError,
                sf.RequestTimeoutError,
                sf.TokenExpiredError,
            )
            if isinstance(error, retryable_http) or errno in _TRANSIENT_ERRNOS:
                return TransientStepError(
                    f"Snowflake failed for a passing reason: {_first_line(error)}"
                )
            if errno in _UNREACHABLE_ERRNOS or (
                isinstance(error, sf.OperationalError)
                and not isinstance(error, sf.ProgrammingError)
            ):
                return SourceUnreachableError(
                    f"lost the connection to Snowflake: {_first_line(error)}",
                    hint="check the network, then retry",
                )
            message = getattr(error, "msg", None) or str(error)
            return _terminal(sql, error, str(message))


def _first_line(error: Exception) -> str:
    text = redact(str(getattr(error, "msg", None) or error))
    return text.strip().splitlines()[0] if text.strip() else type(error).__name__
