"""Servers speaking PostgreSQL's wire protocol (PostgreSQL itself, Redshift), over psycopg 3.

Each server's warehouse module subclasses ``PostgresWireWarehouse`` and sets its defaults
(Redshift also its session settings and how it loads tables).

How a query runs: one connection per query, a transaction (``BEGIN READ ONLY`` unless
``allow_writes``), ``SET statement_timeout`` so the server cancels a slow query itself, and a
client-side timer that sends a cancel request shortly after the limit in case the server did
not. A single query is read through a server-side cursor (``DECLARE ... CURSOR``, then
``FETCH`` in batches) and each batch becomes Arrow arrays column by column, typed from the
result's type OIDs (see ``arrow_type_of_column``); other statements (allowed with
``allow_writes``) run as they are.
"""

from playbook_assets.connections.warehouses.postgres_wire.resource import PostgresWireWarehouse
from playbook_assets.connections.warehouses.postgres_wire.results import arrow_type_of_column

__all__ = ["PostgresWireWarehouse", "arrow_type_of_column"]
