"""Audit events as people read them: ``{{ event|audit_verb }}``, ``{{ event|audit_target }}``."""

from __future__ import annotations

from typing import Any

from django import template
from django.utils.safestring import SafeString

from console.audit import words

register = template.Library()


@register.filter
def verb_words(verb: str) -> str:
    return words.verb_words(str(verb or ""))


@register.filter
def audit_verb(event: Any) -> SafeString:
    return words.verb_html(event)


@register.filter
def audit_target(event: Any) -> SafeString | str:
    return words.target_html(event)
