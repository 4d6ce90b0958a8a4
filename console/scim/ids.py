"""SCIM resource ids: a UUID unique across Users and Groups, or a resource type's old integer key.

Every answer shows the UUID (``scim_id``). A value that is all digits is the integer key a
client stored before ids became UUIDs, and names a resource of the type it is used for
only: ``/Users/71`` is person 71, ``/Groups/71`` team 71.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.db.models import Q

MAX_KEY = 2**63 - 1  # a BigAutoField


def parse_id(raw: Any) -> int | uuid.UUID | None:
    """The integer key or the SCIM id that ``raw`` spells, or ``None`` when it can name nothing."""
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int):
        return raw if 0 < raw <= MAX_KEY else None
    if not isinstance(raw, str):
        return None
    text = raw.strip()
    if text.isascii() and text.isdigit():
        key = int(text)
        return key if 0 < key <= MAX_KEY else None
    try:
        return uuid.UUID(text)
    except ValueError:
        return None


def id_q(ident: int | uuid.UUID, *, key: str = "pk", scim_id: str = "scim_id") -> Q:
    """The condition on ``key`` (an integer) or ``scim_id`` (a UUID): either is one index probe."""
    return Q(**{key: ident}) if isinstance(ident, int) else Q(**{scim_id: ident})


def ids_q(idents: list[int | uuid.UUID], *, key: str = "pk", scim_id: str = "scim_id") -> Q:
    """The rows any of ``idents`` names; nothing when they name none."""
    keys = {i for i in idents if isinstance(i, int)}
    uuids = {i for i in idents if isinstance(i, uuid.UUID)}
    condition = Q(**{f"{key}__in": keys}) if keys or not uuids else Q()
    if uuids:
        condition |= Q(**{f"{scim_id}__in": uuids})
    return condition
