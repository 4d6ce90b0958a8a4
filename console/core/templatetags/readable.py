"""Values as people read them: ``{% json_block value %}``, ``{{ moment|when }}``;
audit events read through ``console.audit.templatetags.audit_words``.

``{% json_block value "Request" %}`` renders ``includes/json_block.html``: the value as
indented JSON (never Python's repr), collapsible, with a copy button.
"""

from __future__ import annotations

from typing import Any

from django import template
from django.utils.safestring import SafeString

from console.core import display

register = template.Library()


@register.filter
def as_json(value: Any) -> str:
    """``value`` as indented JSON text (a string that holds JSON is re-indented)."""
    return display.as_json(value)


@register.inclusion_tag("includes/json_block.html")
def json_block(value: Any, summary: str = "JSON", open: bool = False) -> dict[str, Any]:
    """One payload: collapsible (``open`` to start unfolded), indented, with Copy."""
    return display.json_block_context(value, summary, open)


@register.filter
def when(value: Any, empty: str = "—") -> SafeString | str:
    """A time in the viewer's zone, naming the zone: ``2026-12-06 17:14 CET``."""
    return display.when(value, empty)


@register.filter
def when_exact(value: Any, empty: str = "—") -> SafeString | str:
    """As :func:`when`, to the second."""
    return display.when(value, empty, seconds=True)


@register.filter
def ago(value: Any, empty: str = "—") -> str:
    """How long ago: ``just now`` under a minute, then ``3 minutes ago``."""
    return display.ago(value, empty)


@register.filter
def is_structured(value: Any) -> bool:
    """Whether a value is a list or an object (shown as JSON) rather than one word or number."""
    return isinstance(value, (dict, list, tuple))


@register.filter
def urn_short(path: str) -> str:
    """``urn:…:enterprise:2.0:User:department`` → ``department`` (the full path goes in a title)."""
    return str(path or "").rsplit(":", 1)[-1]
