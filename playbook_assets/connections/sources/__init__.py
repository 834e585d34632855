"""Other sources: generic REST and GraphQL APIs, CSV and Parquet files."""
