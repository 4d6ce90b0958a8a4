#!/usr/bin/env bash
# Set up and run the console: web on 127.0.0.1:8000, a Celery worker and beat, in the
# foreground, with SQLite and a broker that needs no server. Ctrl-C stops everything.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh app
py=.venv/bin/python
$py manage.py migrate --no-input
$py manage.py createcachetable
$py manage.py ensure_admin
exec $py manage.py runconsole "$@"
