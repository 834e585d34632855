"""Safe SQL template rendering per warehouse dialect, and the read-only guard.

A warehouse step's SQL is a template with ``{{name}}`` placeholders. Each placeholder gets one
of three kinds of value, and the caller (who knows where a value came from) says which:

- ``SqlCode``: a value written literally in the playbook YAML. It is code, written by the
  playbook's author, and is substituted as written (``str(value)``; YAML booleans become
  ``TRUE``/``FALSE`` and a YAML null becomes ``NULL``).
- ``SqlValue``: a value that arrives at run time (a parameter, a step result, a partition key).
  It is rendered as a SQL literal of the warehouse's dialect by sqlglot's generator, so it can
  never change the structure of the statement.
- ``SqlIdentifier``: a run-time value of a parameter declared ``type: identifier``. It must be a
  plain, possibly dotted, identifier (``analytics.accounts``, ``"My Schema".t``) and is quoted in
  the dialect where needed.

After substitution, every run-time value is checked in place (see ``rendering``).

Modules: ``dialects`` (names, errors), ``values`` (the three kinds), ``placeholders``,
``literals``, ``identifiers``, ``rendering`` (``render_sql``, long lists bound as tables) and
``read_only`` (``ensure_read_only``).
"""

from playbook_assets.core.sql.dialects import (
    SUPPORTED_DIALECTS,
    SqlTemplateError,
    UnsafeSqlError,
    normalize_dialect,
)
from playbook_assets.core.sql.identifiers import sql_identifier
from playbook_assets.core.sql.literals import sql_literal
from playbook_assets.core.sql.placeholders import placeholders
from playbook_assets.core.sql.read_only import ensure_read_only
from playbook_assets.core.sql.rendering import (
    BOUND_LIST_COLUMN,
    LIST_BINDING_THRESHOLD,
    RenderedSql,
    bound_list_relation,
    render_sql,
    render_sql_binding,
)
from playbook_assets.core.sql.values import SqlCode, SqlIdentifier, SqlValue, TemplateValue

__all__ = [
    "BOUND_LIST_COLUMN",
    "LIST_BINDING_THRESHOLD",
    "SUPPORTED_DIALECTS",
    "RenderedSql",
    "SqlCode",
    "SqlIdentifier",
    "SqlTemplateError",
    "SqlValue",
    "TemplateValue",
    "UnsafeSqlError",
    "bound_list_relation",
    "ensure_read_only",
    "normalize_dialect",
    "placeholders",
    "render_sql",
    "render_sql_binding",
    "sql_identifier",
    "sql_literal",
]
