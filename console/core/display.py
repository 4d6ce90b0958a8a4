"""How values read on pages: JSON indented, times in the viewer's zone with its name.

The template filters in ``console.core.templatetags.readable`` and the table cells built in
Python (``console.core.tables``) both use these, so a payload or a time reads the same
wherever it shows.
"""

from __future__ import annotations

import datetime as dt
import json
import zoneinfo
from functools import cache
from typing import Any

from django.template.loader import render_to_string
from django.utils import dateformat, timezone
from django.utils.dateparse import parse_datetime
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe


def as_json(value: Any) -> str:
    """``value`` as indented JSON; a string holding JSON is re-indented, other text kept as is
    (a logged body cut short is not JSON, and reads better as stored than quoted)."""
    if isinstance(value, (bytes, bytearray)):
        value = value.decode("utf-8", errors="replace")
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return value
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


def json_block_context(value: Any, summary: str = "JSON", open: bool = False) -> dict[str, Any]:
    """The context of ``includes/json_block.html``: the one way a payload shows."""
    return {"text": pre_text(as_json(value)), "summary": summary, "open": open}


def json_block(value: Any, summary: str = "JSON", open: bool = False) -> SafeString:
    """``includes/json_block.html`` rendered, for cells built in Python."""
    return mark_safe(render_to_string("includes/json_block.html", json_block_context(value, summary, open)))  # noqa: S308


def pre_text(text: str) -> SafeString:
    """Text escaped for the content of a ``<pre>``: only what HTML needs, so quotes read as quotes."""
    return mark_safe(text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;"))  # noqa: S308


def _aware(value: Any) -> dt.datetime | dt.date | None:
    if isinstance(value, str):
        value = parse_datetime(value) if value else None
    if isinstance(value, dt.datetime):
        return value if timezone.is_aware(value) else value.replace(tzinfo=dt.UTC)
    if isinstance(value, dt.date):
        return value
    return None


def zone_name(moment: dt.datetime) -> str:
    """The zone's abbreviation (CET, UTC, EST); a zone without one reads as its offset from UTC."""
    name = moment.tzname() or ""
    if not name or name[0] in "+-":
        offset = dateformat.format(moment, "O")  # +0530
        return "UTC" if offset == "+0000" else f"UTC{offset[:3]}:{offset[3:]}".replace(":00", "")
    return name


def when(value: Any, empty: str = "—", *, seconds: bool = False) -> SafeString | str:
    """A ``<time>`` in the viewer's zone that names the zone: ``2026-12-06 17:14 CET``."""
    moment = _aware(value)
    if moment is None:
        return empty
    if not isinstance(moment, dt.datetime):
        return format_html('<time datetime="{}">{}</time>', moment.isoformat(), moment.isoformat())
    local = timezone.localtime(moment)
    text = dateformat.format(local, "Y-m-d H:i:s" if seconds else "Y-m-d H:i")
    return format_html(
        '<time datetime="{}" title="{}">{} {}</time>',
        local.isoformat(),
        dateformat.format(moment.astimezone(dt.UTC), "Y-m-d H:i:s") + " UTC",
        text,
        zone_name(local),
    )


def when_text(value: Any, empty: str = "") -> str:
    """The same time as plain text (exports, titles): ``2026-12-06 17:14 CET``."""
    moment = _aware(value)
    if moment is None:
        return empty
    if not isinstance(moment, dt.datetime):
        return moment.isoformat()
    local = timezone.localtime(moment)
    return f"{dateformat.format(local, 'Y-m-d H:i')} {zone_name(local)}"


@cache
def ago(value: dt.datetime | None, empty: str = "—") -> str:
    """How long ago, as people say it: ``just now`` under a minute, then ``3 minutes ago``."""
    if value is None:
        return empty
    from django.utils.timesince import timesince

    now = timezone.now()
    return "just now" if (now - value).total_seconds() < 60 else f"{timesince(value, now, depth=1)} ago"


def time_zones() -> list[str]:
    """The IANA zones people can choose, UTC first."""
    return ["UTC", *sorted(zone for zone in zoneinfo.available_timezones() if "/" in zone and zone != "UTC")]


def valid_zone(name: str | None) -> str:
    """``name`` if it is a known IANA zone, else the empty string."""
    name = (name or "").strip()
    if not name:
        return ""
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return ""
    return name
