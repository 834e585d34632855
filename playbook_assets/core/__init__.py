"""The core: everything about a playbook that needs no Dagster.

Spec models and YAML loading, parameters, references, the dependency graph, safe SQL rendering,
the expression language, transforms on DuckDB over Arrow, checks, insights, the run report and
its rendering, the artifact store and run records. It imports neither Dagster nor the
application.
"""
