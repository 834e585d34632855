"""The MCP server of the product (``playbook mcp``): agents list, describe, validate and run
playbooks and read their run records through typed tools (see ``server``)."""
