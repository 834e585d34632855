"""Unit tests of playbooks, declared in YAML (``<playbook>.tests.yaml``): given rows for the
steps that read sources, expected rows or values of later steps and outputs, run offline in
the engine of a real run (``runner``); the file format (``spec``); comparing results and
their row diffs (``compare``)."""
