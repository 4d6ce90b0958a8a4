"""Rate limits the applications teach: a 429 lowers an integration's limit, never raises it.

An integration's rate limit (``rate_limit_per_second``, enforced across every worker by
``provisioning/throttle.py``) comes from its template or from an admin. When the
application answers ``429 Too Many Requests`` anyway, its own limit is lower: the
integration's is halved (or brought down to the rate actually sent, halved, when the
caller knows it), down to ``MIN_RATE_PER_SECOND`` at most, and the integration says when
and from what (``rate_limit_learned_at``, ``rate_limit_learned_note``), with an audit event.
Only an admin raises it again; editing the limit clears the note.

Several workers meet the same 429s at once: the lowering is one conditional UPDATE that
holds only while the limit is still the one it halves and no lowering happened within
the cooldown (the 429's Retry-After, and at least ``COOLDOWN_SECONDS``), so concurrent
429s lower it once, and 429s still arriving for requests sent before it took effect do
not lower it again.
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.db.models import Q
from django.utils import timezone

from console.audit.services import audit_record
from integrations.catalog import per_second
from integrations.models import Integration

logger = logging.getLogger(__name__)

MIN_RATE_PER_SECOND = 0.05  # three requests a minute: slower than that, nothing gets done
COOLDOWN_SECONDS = 60.0
OWN_CONNECTION_WAIT_SECONDS = 10.0


def learn_from_429(
    integration: Integration,
    retry_after: float | None,
    requests_in_window: int | None = None,
    window_seconds: float | None = None,
    *,
    now: datetime | None = None,
) -> float | None:
    """Lower ``integration``'s rate limit after the application answered 429; the new limit, or None.

    ``requests_in_window`` requests sent in the last ``window_seconds`` (where the caller
    counts them) bound the new limit too: the application refused that rate. Never raises:
    this runs on the way to reporting the 429, which matters more.
    """
    if integration.pk is None:
        return None
    observed = requests_in_window / window_seconds if requests_in_window and window_seconds else None
    when = now or timezone.now()
    try:
        if connections[DEFAULT_DB_ALIAS].allow_thread_sharing:
            # The connection is lent to an extraction's background writer, which the reading
            # thread leaves the database to: the lowering goes on a connection of its own.
            return _on_own_connection(integration, retry_after, observed, when)
        return _lower(integration, retry_after, observed, when)
    except Exception:
        logger.exception("rate limit learning failed", extra={"integration": integration.pk})
        return None


def _on_own_connection(
    integration: Integration, retry_after: float | None, observed: float | None, when: datetime
) -> float | None:
    result: list[float | None] = [None]

    def lower() -> None:
        try:
            result[0] = _lower(integration, retry_after, observed, when)
        except Exception:
            logger.exception("rate limit learning failed", extra={"integration": integration.pk})
        finally:
            connections[DEFAULT_DB_ALIAS].close()

    thread = threading.Thread(target=lower, name="rate-limit-learning", daemon=True)
    thread.start()
    thread.join(OWN_CONNECTION_WAIT_SECONDS)
    return result[0]


def _lower(integration: Integration, retry_after: float | None, observed: float | None, now: datetime) -> float | None:
    cooldown = timedelta(seconds=max(COOLDOWN_SECONDS, retry_after or 0.0))
    stored = _stored(integration.pk)
    if stored is None:
        return None
    old, learned_at = stored["rate_limit_per_second"], stored["rate_limit_learned_at"]
    if learned_at is not None and learned_at > now - cooldown:
        _remember(integration, stored)  # lowered a moment ago (by this worker or another)
        return None
    new = max(MIN_RATE_PER_SECOND, min(old, observed or old) / 2)
    if new >= old:  # at the floor already
        return None
    waited = f" with Retry-After {retry_after:g} s" if retry_after is not None else ""
    sent = f" ({per_second(observed)}/s were being sent)" if observed else ""
    note = (
        f"Lowered from {per_second(old)}/s to {per_second(new)}/s after a 429{waited}{sent} "
        f"at {now.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC"
    )
    with transaction.atomic():
        lowered = (
            Integration.objects.filter(pk=integration.pk, rate_limit_per_second=old)
            .filter(Q(rate_limit_learned_at__isnull=True) | Q(rate_limit_learned_at__lte=now - cooldown))
            .update(rate_limit_per_second=new, rate_limit_learned_at=now, rate_limit_learned_note=note)
        )
        if lowered:
            audit_record(
                verb="integration.rate_limit_lowered",
                target=integration,
                details={
                    "from_per_second": old,
                    "to_per_second": new,
                    "retry_after": retry_after,
                    **({"observed_per_second": observed} if observed else {}),
                },
                before={"rate_limit_per_second": old},
                after={"rate_limit_per_second": new},
            )
    if not lowered:  # another worker lowered it first: take its value
        stored = _stored(integration.pk)
        if stored is not None:
            _remember(integration, stored)
        return None
    _remember(
        integration, {"rate_limit_per_second": new, "rate_limit_learned_at": now, "rate_limit_learned_note": note}
    )
    logger.warning(
        "rate limit lowered after 429",
        extra={"integration": integration.pk, "from_per_second": old, "to_per_second": new, "retry_after": retry_after},
    )
    return new


def _stored(pk: int) -> dict[str, Any] | None:
    row = (
        Integration.objects.filter(pk=pk)
        .values("rate_limit_per_second", "rate_limit_learned_at", "rate_limit_learned_note")
        .first()
    )
    return dict(row) if row is not None else None


def _remember(integration: Integration, stored: dict[str, Any]) -> None:
    """This worker's copy of the integration goes at the stored (lower) rate from now on."""
    if stored["rate_limit_per_second"] < integration.rate_limit_per_second:
        integration.rate_limit_per_second = stored["rate_limit_per_second"]
    integration.rate_limit_learned_at = stored["rate_limit_learned_at"]
    integration.rate_limit_learned_note = stored["rate_limit_learned_note"]
