"""`make bench`: the main analytics routes over the gateway, against ClickHouse and PostgreSQL.

Run it as `python -m tests.bench` (see `__main__.py` and `options.py` for the options). Sections:
the routes on the demo workspace (always), export (`export.py`), live ingest (`live.py`), the
concurrency section with wrk (`concurrency.py`; 10 s per run, 3 s on a smoke run under a million
clicks, BENCH_WRK_SECONDS=0 turns it off) and, opt-in with BENCH_TENANTS=<clicks>, the
multi-tenant section (`tenants.py`). BENCH_ONLY=<route names or sections> narrows a run. Nothing
here is collected by pytest: no module is named `test_*`.
"""
