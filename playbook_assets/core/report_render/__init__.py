"""The run report for people: charts, tables and numbers, as Markdown and standalone HTML."""
