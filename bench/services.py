"""What the benchmarks share: where the local PostgreSQL and Redis are, and a free port."""

from __future__ import annotations

import os
import socket


def postgres() -> str:
    return os.environ.get("BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432").rstrip("/")


def redis() -> str:
    return os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379").rstrip("/")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
