"""Hand-written reads for the few hot paths where composing an ORM query costs more than running it."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from django.db import models


def first_raw[M: models.Model](model: type[M], sql: str, params: Sequence[Any] = ()) -> M | None:
    """The first ``model`` instance a hand-written ``SELECT *`` gives, or ``None``.

    Table names in ``sql`` come from the models' ``_meta``; values travel in ``params``.
    """
    return next(iter(model._default_manager.raw(sql, params)), None)


def ids_q(field: str, ids: Iterable[int], *, run: int = 8) -> models.Q:
    """A filter naming exactly these ids: each run of consecutive ids (``run`` or more) as a
    range, the rest as one list. A burst's people and accounts have consecutive ids, so a
    query about 1,000 of them sends two bounds, not 1,000 parameters to bind and plan."""
    ranges: list[tuple[int, int]] = []
    single: list[int] = []
    ordered = sorted(set(ids))
    start = 0
    for index in range(1, len(ordered) + 1):
        if index == len(ordered) or ordered[index] != ordered[index - 1] + 1:
            if index - start >= run:
                ranges.append((ordered[start], ordered[index - 1]))
            else:
                single.extend(ordered[start:index])
            start = index
    q = models.Q(**{f"{field}__in": single}) if single or not ranges else models.Q()
    for low, high in ranges:
        q |= models.Q(**{f"{field}__gte": low, f"{field}__lte": high})
    return q
