"""The Dagster adapter: a playbook as a Dagster asset graph (translator, op, I/O manager,
checks, partitions, schedules and sensors), and the instance helpers."""
