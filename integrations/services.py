"""Integrations' services: what changes an integration itself (its extraction is ``integrations.extraction``)."""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import IntegrityError, transaction
from django.dispatch import Signal
from django.http import HttpRequest
from django.utils import timezone

from console.audit.services import audit_record, changed_fields
from console.core.errors import Conflict, InvalidInput, NotFound, Refused
from integrations import catalog
from integrations.correlation import correlation_rules_problems
from integrations.models import NAME_TAKEN, ExtractionRun, Integration

# Sent inside the transaction that archives an integration: apps above (provisioning) end
# what waits for it. ``sender`` is Integration; ``integration``, ``actor`` and ``request`` come along.
integration_archived = Signal()

# The settings of an integration that an admin writes (the form's and the API's fields):
# what integration_create and integration_update take.
INTEGRATION_FIELDS = [
    "name",
    "kind",
    "application_type",
    "base_url",
    "auth_type",
    "bearer_token",
    "basic_username",
    "basic_password",
    "ca_certificate",
    "users_endpoint",
    "groups_endpoint",
    "discover_extensions",
    "provisioning_enabled",
    "enabled",
    "timeout_seconds",
    "page_size",
    "rate_limit_per_second",
    "rate_limit_burst",
    "max_concurrency",
    "supports_hard_delete",
    "membership_chunk_size",
    "mass_change_max_accounts",
    "mass_change_max_percent",
    "extraction_interval_minutes",
    "correlation_rules",
]
BASE_URL_VALIDATOR = URLValidator(
    schemes=["http", "https"],
    message="The SCIM base URL must start with http:// or https:// and be a full address, "
    "e.g. https://app.example.com/scim/v2.",
)
# What the audit log says of a secret that was set: never the secret itself.
SECRET_SET = "(changed)"  # noqa: S105 - a word for the log, not a secret


def integration_input_problems(
    *, fields: Mapping[str, Any], integration: Integration | None = None
) -> list[InvalidInput]:
    """What is wrong with ``fields`` as the settings of a new integration (or of ``integration``),
    beyond their shape: each problem names its field. The form and the API show them all at once;
    integration_create and integration_update refuse the first.

    A field left out (or a blank secret) keeps what ``integration`` holds.
    """
    problems = []
    if "correlation_rules" in fields:
        problems.extend(correlation_rules_problems(fields["correlation_rules"]))
    base_url = fields.get("base_url")
    if base_url:
        try:
            BASE_URL_VALIDATOR(base_url)
        except ValidationError as exc:
            problems.append(InvalidInput(str(exc.messages[0]), "base_url"))
    ca_certificate = fields.get("ca_certificate") or ""
    if ca_certificate.strip():
        try:
            ssl.create_default_context(cadata=ca_certificate)
        except (ssl.SSLError, ValueError) as exc:
            problems.append(InvalidInput(f"This is not a PEM certificate that parses ({exc}).", "ca_certificate"))

    def current(name: str) -> Any:
        if name in fields and (fields[name] or name not in Integration.SECRET_FIELDS):
            return fields[name]
        return getattr(integration, name) if integration is not None else ""

    auth_type = current("auth_type") or Integration.AuthType.BEARER
    if auth_type == Integration.AuthType.BEARER and not current("bearer_token"):
        problems.append(InvalidInput("A bearer token is needed for bearer authentication.", "bearer_token"))
    if auth_type == Integration.AuthType.BASIC and not (current("basic_username") and current("basic_password")):
        problems.append(
            InvalidInput("A user name and a password are needed for basic authentication.", "basic_password")
        )
    return problems


def integration_create(
    *,
    actor: Any,
    fields: Mapping[str, Any],
    template: catalog.Template | None = None,
    request: HttpRequest | None = None,
) -> Integration:
    """Add an integration with ``fields`` (names of INTEGRATION_FIELDS; what is left out keeps its
    default), started from ``template`` when given (its dialect profile comes along).

    Raises InvalidInput for a value that will not do, Conflict where the name is taken. The
    audit record (secrets as a mere "(changed)") is written in the same transaction.
    """
    _checked(fields, None)
    integration = Integration(**_known(fields))
    secrets = [name for name in Integration.SECRET_FIELDS if getattr(integration, name)]
    if secrets:
        integration.credentials_changed_at = timezone.now()
    with transaction.atomic():
        _name_free(integration)
        _saved(integration)
        if template is not None:
            catalog.template_apply(integration=integration, template=template)
        audit_record(
            verb="integration.created",
            actor=actor,
            target=integration,
            request=request,
            after={
                name: SECRET_SET if name in Integration.SECRET_FIELDS else _plain(value)
                for name, value in _known(fields).items()
                if name not in Integration.SECRET_FIELDS or value
            },
            details={"template": template.slug} if template is not None else None,
        )
    return integration


def integration_update(
    *, actor: Any, integration: Integration, fields: Mapping[str, Any], request: HttpRequest | None = None
) -> Integration:
    """Change the settings named in ``fields``; a blank secret keeps the stored one, a new one
    replaces it (integration_credentials_replace, in the same transaction).

    Raises InvalidInput for a value that will not do, Conflict where the name is taken, Refused
    for a deleted integration, NotFound for one that is not there. A new rate limit replaces the
    one a 429 taught (integrations/rate_limits.py).
    """
    given = _known(fields)
    secrets = {name: given.pop(name) for name in Integration.SECRET_FIELDS if name in given}
    with transaction.atomic():
        stored = _locked_live(integration)
        _checked(fields, stored)
        original = {name: getattr(stored, name) for name in given}
        for name, value in given.items():
            setattr(stored, name, value)
        if stored.rate_limit_per_second != original.get("rate_limit_per_second", stored.rate_limit_per_second):
            stored.rate_limit_learned_at, stored.rate_limit_learned_note = None, ""
        _name_free(stored)
        _saved(stored)
        new_secrets = {name: value for name, value in secrets.items() if value}
        if new_secrets:
            integration_credentials_replace(actor=actor, integration=stored, credentials=new_secrets, request=request)
        before, after = changed_fields(stored, original, list(given))
        if after or not new_secrets:
            audit_record(
                verb="integration.updated", actor=actor, target=stored, request=request, before=before, after=after
            )
    integration.refresh_from_db()
    return integration


def integration_credentials_replace(
    *, actor: Any, integration: Integration, credentials: Mapping[str, str], request: HttpRequest | None = None
) -> Integration:
    """Replace the integration's secrets named in ``credentials`` (of ``Integration.SECRET_FIELDS``)
    with the new values; the others are kept. Write-only: what is replaced is never shown again,
    and the audit record names the fields replaced, never their values.

    Raises InvalidInput for an unknown or an empty secret, Refused for a deleted integration,
    NotFound for one that is not there.
    """
    for name, value in credentials.items():
        if name not in Integration.SECRET_FIELDS:
            raise InvalidInput(f"{name} is not a credential of an integration.", name)
        if not value:
            raise InvalidInput("Give the new value, or leave the credential out to keep it.", name)
    with transaction.atomic():
        stored = _locked_live(integration)
        for name, value in credentials.items():
            setattr(stored, name, value)
        stored.credentials_changed_at = timezone.now()
        stored.save(update_fields=[*credentials, "credentials_changed_at", "updated_at"])
        audit_record(
            verb="integration.credentials_replaced",
            actor=actor,
            target=stored,
            request=request,
            details={"replaced": sorted(credentials)},
        )
    integration.refresh_from_db()
    return integration


def _known(fields: Mapping[str, Any]) -> dict[str, Any]:
    """``fields`` as model values; a name that is no setting of an integration is refused."""
    unknown = sorted(set(fields) - set(INTEGRATION_FIELDS))
    if unknown:
        raise InvalidInput(f"{unknown[0]} is not a setting of an integration.", unknown[0])
    return dict(fields)


def _checked(fields: Mapping[str, Any], integration: Integration | None) -> None:
    problems = integration_input_problems(fields=fields, integration=integration)
    if problems:
        raise problems[0]


def integration_changeable(integration: Integration) -> None:
    """Refused once the integration was deleted: what it did stays readable, it is not changed."""
    if integration.archived_at is not None:
        raise Refused(f"{integration.name} was deleted: a deleted integration cannot be changed.")


def _locked_live(integration: Integration) -> Integration:
    """The integration's row, locked for the change (see integration_changeable)."""
    stored = Integration.all_objects.select_for_update().filter(pk=integration.pk).first()
    if stored is None:
        raise NotFound("There is no such integration.")
    integration_changeable(stored)
    return stored


def _name_free(integration: Integration) -> None:
    if Integration.objects.filter(name=integration.name).exclude(pk=integration.pk).exists():
        raise Conflict(NAME_TAKEN, "name")


def _saved(integration: Integration) -> None:
    """Save; the name taken meanwhile (the database's constraint) is a Conflict."""
    try:
        with transaction.atomic():
            integration.save()
    except IntegrityError:
        raise Conflict(NAME_TAKEN, "name") from None


def _plain(value: Any) -> Any:
    """An audited value: JSON's own types as they are (a list of matching rules stays a list,
    in its order, never the text of a Python list), anything else as text."""
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    return value if value is None or isinstance(value, (str, int, float, bool)) else str(value)


def integration_delete(*, actor: Any, integration: Integration, request: Any = None) -> Integration:
    """Delete an integration as people mean it: it is gone from the console, its history is not.

    The integration is archived under its name (its name is free for a new one): provisioning
    and extraction stop, what waits for it is cancelled, its credentials are erased; its
    actions and their SCIM calls, its runs, its last picture of the application (what the
    actions name) and its audit trail stay readable.
    """
    now = timezone.now()
    with transaction.atomic():
        if Integration.objects.select_for_update().filter(pk=integration.pk).first() is None:
            return integration  # deleted meanwhile: once is enough
        audit_record(
            verb="integration.deleted",
            actor=actor,
            target=integration,
            request=request,
            before={"name": integration.name, "base_url": integration.base_url},
        )
        Integration.all_objects.filter(pk=integration.pk).update(
            archived_at=now,
            enabled=False,
            provisioning_enabled=False,
            **dict.fromkeys(Integration.SECRET_FIELDS, ""),
            updated_at=now,
        )
        ExtractionRun.objects.filter(
            integration=integration, status__in=[ExtractionRun.Status.QUEUED, ExtractionRun.Status.RUNNING]
        ).update(status=ExtractionRun.Status.FAILED, finished_at=now, error="the integration was deleted")
        integration_archived.send(sender=Integration, integration=integration, actor=actor, request=request)
    integration.refresh_from_db()
    return integration
