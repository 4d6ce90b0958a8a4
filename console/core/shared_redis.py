"""Atomic Redis scripts on the console's cache, where that cache is Redis (shared by every process).

Rate limits and throttles run one of these on every request they guard, so the client and
each script are made once per process and thread, not per call (Django's cache builds a
new client object each time it is asked for one).
"""

from __future__ import annotations

from functools import cache
from typing import Any

from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache


def redis_script(source: str) -> tuple[Any, RedisCache] | None:
    """The registered script for ``source`` and the cache it runs on; ``None`` without Redis."""
    backend = caches["default"]
    if not isinstance(backend, RedisCache):
        return None
    return _registered(backend, source), backend


@cache
def _registered(backend: RedisCache, source: str) -> Any:
    # The connection pool is the cache's own; redis-py gives a forked process a fresh one.
    client = backend._cache.get_client(None, write=True)
    return client.register_script(source)
