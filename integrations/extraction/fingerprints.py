"""Fingerprints: what tells one state of a resource from another, for finding what changed between reads."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any


def _stable_json_encoder() -> Callable[[Any], str]:
    """``json.dumps(value, sort_keys=True, default=str)``, built once rather than for every resource.

    The C encoder json.dumps itself uses, without the circular-reference check (parsed JSON
    cannot refer to itself): the same text, for less work. The plain encoder where the C
    one is missing.
    """
    make = json.encoder.c_make_encoder  # type: ignore[attr-defined]
    if make is None:
        encoder = json.JSONEncoder(sort_keys=True, default=str)
        return encoder.encode
    iterencode = make(None, str, json.encoder.encode_basestring_ascii, None, ": ", ", ", True, False, True)
    return lambda value: "".join(iterencode(value, 0))


_stable_json = _stable_json_encoder()


def content_hash(resource: dict[str, Any]) -> str:
    """What a resource says apart from its ``meta``: sha256 of its JSON with sorted keys."""
    stable = dict(resource)
    stable.pop("meta", None)
    return hashlib.sha256(_stable_json(stable).encode()).hexdigest()


VERSION_PREFIX = "v:"


def fingerprint(resource: dict[str, Any]) -> str:
    """What tells one state of a resource from another, for finding what changed between reads.

    The resource's ``meta.version`` where it has one: the entity tag that RFC 7643 (section
    3.1) has the application change with the resource, so an unchanged resource costs a
    look-up instead of encoding and hashing it (most of the work of a read that finds little
    changed). Otherwise its ``content_hash``. The two never collide (a version is prefixed).
    """
    meta = resource.get("meta")
    version = meta.get("version") if isinstance(meta, dict) else None
    if isinstance(version, str) and version:
        if len(version) > 64 - len(VERSION_PREFIX):
            version = hashlib.sha256(version.encode()).hexdigest()[: 64 - len(VERSION_PREFIX)]
        return VERSION_PREFIX + version
    return content_hash(resource)
