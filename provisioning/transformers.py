"""Attribute transformers: what SCIM user a person becomes in an integration.

Each row names a target attribute (a core name of the mapping table, or an extension
attribute's normalized name, resolved through the integration's reverse index from
extraction) and where its value comes from: an identity attribute of the person, a static
value, or a template over identity attributes (``{given_name}.{family_name}``, with
``|lower`` and ``|upper``). Rows apply over the default mapping: adding one changes that
attribute and keeps every other.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from console.accounts.models import Person
from console.core.errors import InvalidInput, NotFound
from integrations.models import ExtensionAttribute, Integration
from provisioning.models import AttributeTransformer

# Core names (as in the custom-application mapping table) → SCIM paths.
CORE_PATHS = {
    "user_name": "userName",
    "emails": "emails",
    "display_name": "displayName",
    "title": "title",
    "nick_name": "nickName",
    "external_id": "externalId",
    "phone_numbers": "phoneNumbers",
    "addresses": "addresses",
    "ims": "ims",
    "photos": "photos",
    "locale": "locale",
    "preferred_language": "preferredLanguage",
    "profile_url": "profileUrl",
    "timezone": "timezone",
    "user_type": "userType",
    "formatted_name": "name.formatted",
    "family_name": "name.familyName",
    "given_name": "name.givenName",
    "middle_name": "name.middleName",
    "active": "active",
}
MULTI_VALUED = {"emails", "phone_numbers", "addresses", "ims", "photos"}

# What a transformer may read of a person.
IDENTITY_ATTRIBUTES = (
    "username",
    "email",
    "external_id",
    "given_name",
    "family_name",
    "middle_name",
    "formatted_name",
    "display_name",
    "nick_name",
    "title",
    "user_type",
    "preferred_language",
    "locale",
    "timezone",
    "employee_number",
    "cost_center",
    "organization",
    "division",
    "department",
    "manager",
    "full_name",
)
PLACEHOLDER = re.compile(r"\{(\w+)(?:\|(lower|upper))?\}")


class TransformerError(InvalidInput, ValueError):
    """A row that cannot be applied (400); the message names it, ``field`` the input at fault."""


def identity_value(person: Person, name: str) -> Any:
    if name not in IDENTITY_ATTRIBUTES:
        raise TransformerError(f"{name!r} is not an identity attribute (one of {', '.join(IDENTITY_ATTRIBUTES)}).")
    if name == "manager":
        return person.manager.username if person.manager_id and person.manager else ""
    if name == "full_name":
        return person.full_name
    return getattr(person, name, "") or ""


def render_template(person: Person, template: str) -> str:
    def substitute(match: re.Match[str]) -> str:
        value = str(identity_value(person, match.group(1)))
        return value.lower() if match.group(2) == "lower" else value.upper() if match.group(2) == "upper" else value

    return PLACEHOLDER.sub(substitute, template)


def target_path(integration: Integration, attribute_name: str) -> tuple[str | None, str]:
    """(extension schema URN or None, path inside it) for a transformer's attribute name."""
    if attribute_name in CORE_PATHS:
        return None, CORE_PATHS[attribute_name]
    extension = ExtensionAttribute.objects.filter(integration=integration, normalized_name=attribute_name).first()
    return _path(integration, attribute_name, extension)


def _path(
    integration: Integration, attribute_name: str, extension: ExtensionAttribute | None
) -> tuple[str | None, str]:
    """``target_path`` with the extension attribute of that name already read (or none)."""
    if attribute_name in CORE_PATHS:
        return None, CORE_PATHS[attribute_name]
    if extension is None:
        raise TransformerError(
            f"{attribute_name!r} is neither a core attribute nor an extension attribute of "
            f"{integration.name} (extract with schema discovery on to list them).",
            "attribute_name",
        )
    return extension.schema_urn, extension.scim_path[len(extension.schema_urn) + 1 :]


def _value(person: Person, row: AttributeTransformer) -> Any:
    if row.source == AttributeTransformer.Source.IDENTITY_ATTRIBUTE:
        value: Any = identity_value(person, row.value.strip())
    elif row.source == AttributeTransformer.Source.TEMPLATE:
        value = render_template(person, row.value)
    else:
        value = row.value
    if row.attribute_name in MULTI_VALUED:
        if isinstance(value, str) and value.strip().startswith("["):
            try:
                return json.loads(value)
            except ValueError as exc:
                raise TransformerError(f"{row.attribute_name}: not a JSON array ({exc}).") from None
        if row.attribute_name == "emails":
            return [{"value": value, "type": "work", "primary": True}] if value else []
        return [{"value": value}] if value else []
    if row.attribute_name == "active" and isinstance(value, str):
        return value.strip().lower() not in {"false", "0", "no", ""}
    return value


def _place(payload: dict[str, Any], path: str, value: Any) -> None:
    node = payload
    parts = path.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value


@dataclass(frozen=True)
class UserMapping:
    """An integration's transformers, read once, for the users of many people.

    Each row keeps where its value goes (an extension attribute resolved through the
    integration's reverse index), or why it cannot go anywhere: that is raised, as
    ``payload_for`` always did, only for a person the row gives a value.
    """

    integration: Integration
    rows: tuple[tuple[AttributeTransformer, tuple[str | None, str] | TransformerError], ...]

    def payload(self, person: Person) -> dict[str, Any]:
        """The SCIM user for ``person``: the default mapping, each transformer applied over it in
        order (an attribute without a row keeps its default; a row whose value is empty for this
        person leaves the default standing)."""
        from provisioning.services import user_payload_for

        payload = user_payload_for(person)
        for row, place in self.rows:
            value = _value(person, row)
            if value in ("", None, []):
                continue
            if isinstance(place, TransformerError):
                raise place
            urn, path = place
            if urn is None:
                _place(payload, path, value)
            else:
                _place(payload.setdefault(urn, {}), path, value)
        if not payload.get("userName"):
            raise TransformerError(f"The transformers of {self.integration.name} give {person.username} no user_name.")
        return payload

    def read_ahead(self, people: Iterable[Person]) -> None:
        """What the rows read of these people besides their own fields (their managers), read in
        one query, so that ``payload`` asks nothing of the database for any of them."""
        reads_manager = any(
            (row.source == AttributeTransformer.Source.IDENTITY_ATTRIBUTE and row.value.strip() == "manager")
            or (
                row.source == AttributeTransformer.Source.TEMPLATE
                and any(name == "manager" for name, _ in PLACEHOLDER.findall(row.value))
            )
            for row, _ in self.rows
        )
        if not reads_manager:
            return
        people = list(people)
        wanted = {p.manager_id for p in people if p.manager_id and not Person.manager.is_cached(p)}
        managers = Person.objects.in_bulk(wanted) if wanted else {}
        for person in people:
            if person.manager_id in managers:
                person.manager = managers[person.manager_id]


def user_mapping(integration: Integration) -> UserMapping:
    """The integration's transformers with where each goes: two queries, however many people follow."""
    rows = list(integration.transformers.all())
    extensions: dict[str, ExtensionAttribute] = {}
    names = {row.attribute_name for row in rows} - set(CORE_PATHS)
    if names:
        # The first of each name, as target_path reads it (.first(): in the model's order).
        for extension in ExtensionAttribute.objects.filter(integration=integration, normalized_name__in=names):
            extensions.setdefault(extension.normalized_name, extension)
    places: list[tuple[AttributeTransformer, tuple[str | None, str] | TransformerError]] = []
    for row in rows:
        try:
            places.append((row, _path(integration, row.attribute_name, extensions.get(row.attribute_name))))
        except TransformerError as exc:
            places.append((row, exc))
    return UserMapping(integration, tuple(places))


def payload_for(person: Person, integration: Integration) -> dict[str, Any]:
    """The SCIM user for ``person`` in ``integration`` (see :meth:`UserMapping.payload`)."""
    return user_mapping(integration).payload(person)


def transformer_check(integration: Integration, attribute_name: str, source: str, value: str) -> None:
    """Refuse a row that could never apply, before it is saved."""
    target_path(integration, attribute_name)
    if source == AttributeTransformer.Source.IDENTITY_ATTRIBUTE and value.strip() not in IDENTITY_ATTRIBUTES:
        raise TransformerError(
            f"{value!r} is not an identity attribute (one of {', '.join(IDENTITY_ATTRIBUTES)}).", "value"
        )
    if source == AttributeTransformer.Source.TEMPLATE:
        for name, _ in PLACEHOLDER.findall(value):
            if name not in IDENTITY_ATTRIBUTES:
                raise TransformerError(f"{{{name}}} in the template is not an identity attribute.", "value")
        if "{" in PLACEHOLDER.sub("", value):
            raise TransformerError("Write placeholders as {attribute} or {attribute|lower}.", "value")


USER_NAME_SAMPLE = 500  # active people a user_name row is tried on before it is saved


def _require_user_names(integration: Integration, source: str, value: str) -> None:
    """Refuse a user_name row that gives some active person no user name: refused now, not at their sync."""
    row = AttributeTransformer(integration=integration, attribute_name="user_name", source=source, value=value)
    empty = [
        person.username
        for person in Person.objects.filter(is_active=True).order_by("username")[:USER_NAME_SAMPLE]
        if not str(_value(person, row) or "").strip()
    ]
    if empty:
        raise TransformerError(
            f"This user_name would be empty for {len(empty)} active "
            f"{'person' if len(empty) == 1 else 'people'} ({', '.join(empty[:5])}"
            f"{', …' if len(empty) > 5 else ''}): choose a source every person has, such as username or email.",
            "value",
        )


def transformer_add(
    *, actor: Any, integration: Integration, attribute_name: str, source: str, value: str, request: Any = None
) -> AttributeTransformer:
    from console.audit.services import audit_record

    if source not in AttributeTransformer.Source.values:
        raise TransformerError("Choose where the value comes from.", "source")
    if not value.strip():
        raise TransformerError("Give the value, identity attribute or template.", "value")
    transformer_check(integration, attribute_name, source, value)
    if attribute_name == "user_name":
        _require_user_names(integration, source, value)
    last = integration.transformers.order_by("-position").values_list("position", flat=True).first()
    row = AttributeTransformer.objects.create(
        integration=integration,
        position=(last or 0) + 1,
        attribute_name=attribute_name,
        source=source,
        value=value,
    )
    audit_record(
        verb="transformer.added",
        actor=actor,
        target=integration,
        request=request,
        details={"attribute_name": attribute_name, "source": source, "value": value},
    )
    return row


def transformer_delete(*, actor: Any, transformer: AttributeTransformer, request: Any = None) -> None:
    from console.audit.services import audit_record

    audit_record(
        verb="transformer.removed",
        actor=actor,
        target=transformer.integration,
        request=request,
        details={"attribute_name": transformer.attribute_name, "value": transformer.value},
    )
    transformer.delete()


def transformer_move(*, actor: Any, transformer: AttributeTransformer, position: int, request: Any = None) -> None:
    """Put a row at ``position`` (1 is first; past the end is last); the rows are numbered 1..n again.

    Order matters: a later row for the same attribute wins.
    """
    from django.db import transaction

    from console.audit.services import audit_record

    with transaction.atomic():
        rows = list(
            AttributeTransformer.objects.select_for_update()
            .filter(integration_id=transformer.integration_id)
            .order_by("position", "id")
        )
        before = next((index for index, row in enumerate(rows, 1) if row.pk == transformer.pk), None)
        if before is None:
            raise NotFound("That transformer was removed meanwhile.")
        moving = rows.pop(before - 1)
        after = min(max(1, position), len(rows) + 1)
        rows.insert(after - 1, moving)
        changed = []
        for index, row in enumerate(rows, 1):
            if row.position != index:
                row.position = index
                changed.append(row)
        AttributeTransformer.objects.bulk_update(changed, ["position"])
        transformer.position = after
        if before != after:
            audit_record(
                verb="transformer.moved",
                actor=actor,
                target=transformer.integration,
                request=request,
                details={"attribute_name": transformer.attribute_name, "value": transformer.value},
                before={"position": before},
                after={"position": after},
            )
