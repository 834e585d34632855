"""What the tests and the benchmarks talk to across a network, run on this machine.

Stand-ins for the vendors' services (HubSpot, Salesforce, Marketo, Klaviyo, BigQuery), each
written from the vendor's documentation and citing it, the HTTP server they share, small servers
that echo or trickle their answers, and a throwaway PostgreSQL cluster. Nothing here imports the
product (``playbook_assets``, ``playbook_defs``) or the tests: a stand-in that reused the code it
stands against could only agree with it (checked by import-linter, see pyproject.toml). Not
shipped in the wheel.
"""
