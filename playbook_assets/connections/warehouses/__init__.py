"""Data warehouse integrations: one module per warehouse, each a ``WarehouseResource``."""
