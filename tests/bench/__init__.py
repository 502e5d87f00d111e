"""`make bench`: the main analytics routes over the gateway, against ClickHouse and PostgreSQL.

Run it as `python -m tests.bench` (see `__main__.py` for the options). Nothing here is collected
by pytest: no module is named `test_*`.
"""
