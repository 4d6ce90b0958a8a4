"""Hand-written reads for the few hot paths where composing an ORM query costs more than running it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db import models


def first_raw[M: models.Model](model: type[M], sql: str, params: Sequence[Any] = ()) -> M | None:
    """The first ``model`` instance a hand-written ``SELECT *`` gives, or ``None``.

    Table names in ``sql`` come from the models' ``_meta``; values travel in ``params``.
    """
    return next(iter(model._default_manager.raw(sql, params)), None)
