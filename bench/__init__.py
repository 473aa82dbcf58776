"""The benchmark: the service against a raw Starlette + asyncpg baseline
(see bench/README.md). `python bench/run.py --help` lists the modes."""
