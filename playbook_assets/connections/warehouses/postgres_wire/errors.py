"""The error mapping of the PostgreSQL wire protocol: the product's error for a failure while
connecting (libpq's text) or after (its SQLSTATE), with the line of the query it points at.
Every message passes through the connection's ``scrub`` (its passwords and configured
secrets masked) before it leaves."""

from __future__ import annotations

from collections.abc import Callable

import psycopg

from playbook_assets.connections.kit.deadline import limit_text, step_timeout
from playbook_assets.connections.warehouses.postgres_wire.cancel import CancelGuard
from playbook_assets.core.errors import (
    SourceUnreachableError,
    StepTimeoutError,
    TerminalStepError,
    TransientStepError,
)

# SQLSTATEs a retry may fix: serialization failure, deadlock, lock not available, the server
# shutting down or starting up, too many connections.
_TRANSIENT_STATES = frozenset({"40001", "40P01", "55P03", "57P01", "57P02", "57P03", "53300"})
_QUERY_CANCELED = "57014"
_READ_ONLY_TRANSACTION = "25006"

# libpq reports failures while connecting as text without a SQLSTATE. These mean the server
# answered and refused the login: a retry cannot fix them, the settings must change.
_LOGIN_REFUSED = (
    "authentication failed",
    "no password supplied",
    "does not exist",
    "no pg_hba.conf entry",
    "permission denied",
    "ssl was required",
    "does not support ssl",
    "certificate",
)
_TOO_MANY_CLIENTS = ("too many clients", "remaining connection slots")

_WRITE_HINT = "set allow_writes: true on the connection to allow writes"


def connect_error(e: psycopg.Error, where: str, scrub: Callable[[str], str]) -> Exception:
    """A failure to connect to ``where`` (the server, its port and the user)."""
    reason = scrub(str(e).strip())
    lowered = reason.lower()
    if any(marker in lowered for marker in _TOO_MANY_CLIENTS):
        return TransientStepError(f"{where} has too many connections: {reason}")
    if any(marker in lowered for marker in _LOGIN_REFUSED):
        return TerminalStepError(
            f"{where} refused the connection: {reason}",
            hint="check user, password, database and sslmode of the connection",
        )
    return SourceUnreachableError(
        f"cannot connect to {where}: {reason}",
        hint="check host and port, and that the server is running and reachable",
    )


def timeout_error(label: str, timeout_seconds: float | None) -> StepTimeoutError:
    """A query cancelled at the step's time limit."""
    return step_timeout(
        f"the query ran longer than {limit_text(timeout_seconds)} and was cancelled on "
        f"the {label} server"
    )


def query_error(
    e: psycopg.Error,
    *,
    label: str,
    scrub: Callable[[str], str],
    sql: str,
    offset: int,
    connection: psycopg.Connection,
    guard: CancelGuard | None,
) -> Exception:
    """The product's error for a failure after connecting, classified by SQLSTATE."""
    state = e.sqlstate
    primary = scrub(e.diag.message_primary or str(e).strip())
    if guard is not None and (guard.fired.is_set() or state == _QUERY_CANCELED):
        if guard.fired.is_set() or "statement timeout" in primary:
            return timeout_error(label, guard.timeout_seconds)
    if state == _QUERY_CANCELED:
        return TransientStepError(
            f"{label} cancelled the query: {primary}",
            hint="an administrator or another session cancelled it; it will be retried",
        )
    if state in _TRANSIENT_STATES:
        return TransientStepError(f"{label} could not finish the query: {primary}")
    if state is not None and state.startswith("08"):
        return SourceUnreachableError(f"lost the connection to {label}: {primary}")
    if state is None and (isinstance(e, psycopg.OperationalError) or connection.broken):
        return TransientStepError(f"the connection to {label} was lost during the query: {primary}")
    hint = e.diag.message_hint
    if state == _READ_ONLY_TRANSACTION:
        hint = _WRITE_HINT
    return TerminalStepError(
        _located(f"{label} rejected the query", primary, e, sql, offset),
        hint=scrub(hint) if hint else None,
    )


def _located(lead: str, primary: str, e: psycopg.Error, sql: str, offset: int) -> str:
    """The message with the line of ``sql`` the server's error position points at."""
    position = e.diag.statement_position
    if sql and position and position.isdigit():
        index = int(position) - 1 - offset
        if 0 <= index <= len(sql):
            line = sql.count("\n", 0, index) + 1
            text = sql.split("\n")[line - 1].strip()
            return f"{lead} at line {line} of the query: {primary} (line {line}: {text})"
    return f"{lead}: {primary}"
