"""The deterministic demo data set: a DuckDB warehouse and a demo CRM, generated together."""
