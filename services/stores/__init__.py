"""Connections to PostgreSQL, Redis and ClickHouse, and the schema migrations."""
