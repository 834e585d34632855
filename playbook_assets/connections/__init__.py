"""Connections: one module per warehouse and per CRM with the same shape, the REST/GraphQL and
file sources, and the one registry from the type names used in config to their classes."""
