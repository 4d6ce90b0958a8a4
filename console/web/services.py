"""Writes to console-wide settings."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.http import HttpRequest

from console.accounts.models import Person
from console.audit.services import audit_record, changed_fields
from console.web.models import ConsoleSettings

SETTINGS_FIELDS = ["scim_provisioning_enabled", "extraction_interval_minutes"]


@transaction.atomic
def console_settings_update(*, actor: Person, request: HttpRequest | None = None, **values: Any) -> ConsoleSettings:
    unknown = set(values) - set(SETTINGS_FIELDS)
    if unknown:
        raise ValueError(f"unknown settings: {', '.join(sorted(unknown))}")
    current = ConsoleSettings.objects.select_for_update().get(pk=ConsoleSettings.load().pk)
    original = {name: getattr(current, name) for name in values}
    for name, value in values.items():
        setattr(current, name, value)
    before, after = changed_fields(current, original, list(values))
    if after:
        current.save()
        audit_record(verb="settings.updated", actor=actor, target=current, request=request, before=before, after=after)
    return current
