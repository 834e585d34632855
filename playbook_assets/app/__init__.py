"""The application: the ``playbook`` command line and running a playbook through Dagster."""
