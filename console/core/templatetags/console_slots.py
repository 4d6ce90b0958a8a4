"""``{% slot "name" %}`` renders the panels other apps registered for that place."""

from __future__ import annotations

from typing import Any

from django import template
from django.template.loader import render_to_string
from django.utils.safestring import SafeString, mark_safe

from console.core.slots import panels_for

register = template.Library()


@register.simple_tag(takes_context=True)
def slot(context: template.Context, name: str) -> SafeString:
    request: Any = context.get("request")
    page: dict[str, Any] = {str(key): value for key, value in context.flatten().items()}
    parts: list[str] = []
    for panel in panels_for(name):
        extra: dict[str, Any] | None = panel.context(request, page)
        if extra is None:
            continue
        parts.append(render_to_string(panel.template, {**page, **extra}, request=request))
    return mark_safe("".join(parts))  # noqa: S308 - each part is a rendered, autoescaped template
