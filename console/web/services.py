"""Writes to console-wide settings."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from console.accounts.models import Person
from console.audit.services import audit_record, changed_fields
from console.core.models import ConsoleSettings

SIGN_IN_FIELDS = [
    "oidc_enabled",
    "oidc_issuer",
    "oidc_client_id",
    "oidc_client_secret",
    "oidc_scopes",
    "oidc_username_claim",
    "oidc_button_label",
    "oidc_create_people",
    "oidc_default_role",
    "password_sign_in_admins_only",
    "second_factor_required",
]
SETTINGS_FIELDS = ["scim_provisioning_enabled", "extraction_interval_minutes", *SIGN_IN_FIELDS]


def settings_problems(*, current: ConsoleSettings, values: dict[str, Any]) -> dict[str, str]:
    """What is wrong with ``values`` applied to ``current``, by field (the form and the API ask alike)."""
    from console.accounts.oidc import issuer_allowed

    def after(name: str) -> Any:
        return values[name] if name in values else getattr(current, name)

    problems: dict[str, str] = {}
    issuer = after("oidc_issuer")
    if issuer and not issuer_allowed(issuer):
        problems["oidc_issuer"] = "The issuer must use https:// (plain http only to this machine, for trials)."
    if after("oidc_enabled"):
        if not issuer:
            problems.setdefault("oidc_issuer", "Needed to sign in with OpenID Connect.")
        if not after("oidc_client_id"):
            problems["oidc_client_id"] = "Needed to sign in with OpenID Connect."
    if after("oidc_create_people") and after("scim_provisioning_enabled"):
        problems["oidc_create_people"] = (
            "Not while SCIM provisioning is on: then people and their roles come from SCIM only."
        )
    return problems


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
        if "oidc_client_secret" in after:
            current.oidc_client_secret_changed_at = timezone.now()
        if "oidc_issuer" in after and original.get("oidc_issuer"):
            from console.accounts.oidc import discovery_forget

            discovery_forget(str(original["oidc_issuer"]))
        current.save()
        audit_record(verb="settings.updated", actor=actor, target=current, request=request, before=before, after=after)
    return current
