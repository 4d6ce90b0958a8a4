#!/usr/bin/env bash
# Set up and run every quality gate and the whole suite, twice: on the embedded default
# (SQLite, SQLAlchemy broker) and on PostgreSQL with a Redis broker and cache.
# Services that are down are started; one that cannot be reached fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh dev
py=.venv/bin/python

section() { printf '\n=== %s\n' "$*"; }

if [ ! -x /usr/bin/chromium ]; then
  section "installing Debian's chromium for the browser tests"
  as_root=""; [ "$(id -u)" = 0 ] || as_root="sudo"
  $as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $as_root apt-get install -y -qq chromium >/dev/null
fi

section "ruff (lint and format)"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
section "mypy"
.venv/bin/mypy
section "migrations are complete"
$py manage.py makemigrations --check --dry-run
section "manage.py check"
$py manage.py check
section "manage.py check --deploy (production settings)"
CONSOLE_ENV=production \
  SECRET_KEY="$($py -c 'import secrets; print(secrets.token_urlsafe(50))')" \
  ENCRYPTION_KEYS="$($py -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())')" \
  ALLOWED_HOSTS=console.example.com \
  $py manage.py check --deploy --fail-level WARNING

# The two passes run side by side (they share nothing: each has its own database, broker
# and data folder); each one's output is printed whole when both are done.
logs="$(mktemp -d)"
section "tests: SQLite with the embedded broker, and PostgreSQL with Redis, side by side"
pg_up() { pg_isready -q -h 127.0.0.1 -p 5432; }
if ! pg_up; then
  echo "starting PostgreSQL"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -1)" main start || true
  for _ in $(seq 30); do pg_up && break; sleep 1; done
fi
pg_up || { echo "PostgreSQL is not reachable on 127.0.0.1:5432; cannot run the PostgreSQL suite." >&2; exit 1; }
redis_up() { [ "$(redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null)" = PONG ]; }
if ! redis_up; then
  echo "starting Redis"
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /tmp --logfile /tmp/console-ci-redis.log || true
  for _ in $(seq 30); do redis_up && break; sleep 1; done
fi
redis_up || { echo "Redis is not reachable on 127.0.0.1:6379; cannot run the Redis suite." >&2; exit 1; }
redis-cli -h 127.0.0.1 -n 14 flushdb >/dev/null
redis-cli -h 127.0.0.1 -n 15 flushdb >/dev/null

.venv/bin/pytest "$@" >"$logs/sqlite.log" 2>&1 &
sqlite_pid=$!
postgres_status=0
DATABASE_URL="${TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/console}" \
  CELERY_BROKER_URL=redis://127.0.0.1:6379/14 \
  CACHE_URL=redis://127.0.0.1:6379/15 \
  CONSOLE_DATA_DIR="$PWD/var/ci-postgres" \
  .venv/bin/pytest "$@" >"$logs/postgres.log" 2>&1 || postgres_status=$?
sqlite_status=0
wait "$sqlite_pid" || sqlite_status=$?

section "tests: SQLite with the embedded broker (exit $sqlite_status)"
cat "$logs/sqlite.log"
section "tests: PostgreSQL with Redis (exit $postgres_status)"
cat "$logs/postgres.log"
rm -rf "$logs"
[ "$sqlite_status" = 0 ] && [ "$postgres_status" = 0 ]
