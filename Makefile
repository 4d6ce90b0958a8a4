.PHONY: run test lint bench-extraction bench-provisioning bench-scim-server bench-lifecycle bench-drift

run:  ## set up and run the console (web, worker, beat) on 127.0.0.1:8000
	scripts/run.sh

test:  ## set up and run every check and the whole suite (SQLite, then PostgreSQL + Redis)
	scripts/test.sh

lint:
	scripts/setup.sh dev
	.venv/bin/ruff check . && .venv/bin/ruff format --check . && .venv/bin/mypy

bench-extraction:  ## extraction at 100k users against a bare httpx loop, and the users tab at 1M rows (PostgreSQL)
	scripts/setup.sh dev
	.venv/bin/python -m bench.extraction

bench-provisioning:  ## SYNC creates through real workers against a bare POST loop; a 180/min server; approval latency
	scripts/setup.sh dev
	.venv/bin/python -m bench.provisioning

bench-scim-server:  ## the console's /scim/v2 against django-scim2 and django-scim2-server (PostgreSQL, Redis)
	scripts/setup.sh bench
	.venv/bin/python -m bench.scim_server

bench-lifecycle:  ## leavers: SCIM deactivation to verified revocation in 10 apps; a 1,000-joiner burst against the workers' rate
	scripts/setup.sh dev
	.venv/bin/python -m bench.lifecycle

bench-drift:  ## drift of 100k accounts (1% drifting) against that extraction's own time; memory; 10k vs 100k
	scripts/setup.sh dev
	.venv/bin/python -m bench.drift
