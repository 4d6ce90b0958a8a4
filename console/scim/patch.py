"""SCIM PATCH (RFC 7644 §3.5.2) as real clients send it, applied to a User document.

Handles RFC 7644 bodies, Okta's (``members[value eq "…"]`` paths), and Entra ID's
(capitalised ``Add``/``Replace``/``Remove``, ``"True"``/``"False"`` strings, a
``replace`` without a path taking an object, enterprise extension paths).
"""

from __future__ import annotations

import copy
import re
from typing import Any

from console.scim.errors import ScimError, invalid_path, invalid_syntax, invalid_value
from console.scim.filters import CORE_USER, ENTERPRISE, json_string

OPERATIONS = {"add", "replace", "remove"}
PATH = re.compile(r"^(?P<attr>[A-Za-z$][\w$-]*)(?:\[(?P<filter>[^\]]+)\])?(?:\.(?P<sub>[A-Za-z$][\w$-]*))?$")
VALUE_FILTER = re.compile(
    r'^\s*(?P<attr>[A-Za-z$][\w$-]*)\s+eq\s+(?P<value>"(?:[^"\\]|\\.)*"|true|false|\d+)\s*$', re.I
)

# Canonical spelling of attribute names (SCIM names are case-insensitive).
USER_KEYS = {
    k.lower(): k
    for k in [
        "userName",
        "externalId",
        "displayName",
        "nickName",
        "title",
        "userType",
        "preferredLanguage",
        "locale",
        "timezone",
        "active",
        "name",
        "emails",
        "phoneNumbers",
        "roles",
        "profileUrl",
        "ims",
        "photos",
        "addresses",
        "entitlements",
        "x509Certificates",
        "password",
    ]
}
NAME_KEYS = {
    k.lower(): k for k in ["givenName", "familyName", "middleName", "formatted", "honorificPrefix", "honorificSuffix"]
}
ENTERPRISE_KEYS = {
    k.lower(): k for k in ["employeeNumber", "costCenter", "organization", "division", "department", "manager"]
}
READ_ONLY = {"id", "meta", "schemas", "groups"}


def operation_kind(operation: Any) -> str:
    if not isinstance(operation, dict):
        raise invalid_syntax("Each operation must be an object.")
    kind = str(operation.get("op", "")).strip().lower()
    if kind not in OPERATIONS:
        raise invalid_syntax(f"Unknown operation {operation.get('op')!r}: use add, replace or remove.")
    return kind


def operations_of(body: Any) -> list[dict[str, Any]]:
    if not isinstance(body, dict):
        raise invalid_syntax("The body must be a PatchOp object.")
    schemas = body.get("schemas") or []
    if "urn:ietf:params:scim:api:messages:2.0:PatchOp" not in schemas:
        raise invalid_syntax("The body must declare the PatchOp schema.")
    operations = body.get("Operations", body.get("operations"))
    if not isinstance(operations, list) or not operations:
        raise invalid_syntax("Operations must be a non-empty list.")
    return operations


def parse_value_filter(text: str) -> tuple[str, Any]:
    match = VALUE_FILTER.match(text)
    if match is None:
        raise invalid_path(f"Unsupported value filter {text!r}: use attribute eq value.")
    raw = match.group("value")
    value: Any = json_string(raw) if raw.startswith('"') else {"true": True, "false": False}.get(raw.lower(), raw)
    return match.group("attr"), value


def matches(element: Any, attribute: str, value: Any) -> bool:
    if not isinstance(element, dict):
        return False
    found = next((v for k, v in element.items() if k.lower() == attribute.lower()), None)
    if isinstance(found, str) and isinstance(value, str):
        return found.lower() == value.lower()
    return bool(str(found).lower() == str(value).lower())


def apply_user_patch(document: dict[str, Any], operations: list[dict[str, Any]]) -> dict[str, Any]:
    """Return a new User document with the operations applied, or raise a SCIM error."""
    doc = copy.deepcopy(document)
    for operation in operations:
        kind = operation_kind(operation)
        path = operation.get("path")
        value = operation.get("value")
        if path in (None, ""):
            if kind == "remove":
                raise ScimError(400, "remove needs a path.", "noTarget")
            if not isinstance(value, dict):
                raise invalid_syntax("Without a path, the value must be an object of attributes.")
            for key, item in value.items():
                set_attribute(doc, key, item, kind)
            continue
        if not isinstance(path, str):
            raise invalid_path("path must be a string.")
        apply_path(doc, path, value, kind)
    return doc


def split_urn(path: str) -> tuple[str | None, str]:
    lowered = path.lower()
    for urn in (ENTERPRISE, CORE_USER):
        if lowered == urn.lower():
            return urn, ""
        if lowered.startswith(urn.lower() + ":"):
            return urn, path[len(urn) + 1 :]
    return None, path


def set_attribute(doc: dict[str, Any], key: str, value: Any, kind: str) -> None:
    """A no-path add/replace: ``key`` may be an attribute, a dotted path or an extension URN."""
    urn, rest = split_urn(key)
    if urn == ENTERPRISE and not rest:
        if not isinstance(value, dict):
            raise invalid_value("The enterprise extension must be an object.")
        for sub, item in value.items():
            apply_path(doc, f"{ENTERPRISE}:{sub}", item, kind)
        return
    apply_path(doc, key, value, kind)


def apply_path(doc: dict[str, Any], path: str, value: Any, kind: str) -> None:
    urn, rest = split_urn(path)
    container = doc
    keys = USER_KEYS
    if urn == ENTERPRISE:
        if not rest:  # the whole extension at once
            if kind == "remove":
                doc.pop(ENTERPRISE, None)
            elif not isinstance(value, dict):
                raise invalid_value("The enterprise extension must be an object.")
            else:
                target = doc.setdefault(ENTERPRISE, {}) if kind == "add" else {}
                target.update({ENTERPRISE_KEYS.get(k.lower(), k): v for k, v in value.items()})
                doc[ENTERPRISE] = target
            return
        container = doc.setdefault(ENTERPRISE, {})
        keys = ENTERPRISE_KEYS
    match = PATH.match(rest)
    if match is None:
        raise invalid_path(f"Cannot read the path {path!r}.")
    attribute, value_filter, sub = match.group("attr"), match.group("filter"), match.group("sub")
    if attribute.lower() in READ_ONLY:
        raise ScimError(400, f"{attribute} is read-only.", "mutability")
    name = keys.get(attribute.lower())
    if name is None:
        raise invalid_path(f"Unknown attribute {attribute!r}.")
    if name == "name" and sub is None and value_filter is None and kind != "remove":
        if not isinstance(value, dict):
            raise invalid_value("name must be an object.")
        target = container.setdefault("name", {}) if kind == "add" else {}
        target.update({NAME_KEYS.get(k.lower(), k): v for k, v in value.items()})
        container["name"] = target
        return
    if name == "name" and sub is not None:
        sub_name = NAME_KEYS.get(sub.lower())
        if sub_name is None:
            raise invalid_path(f"Unknown attribute name.{sub}.")
        names = container.setdefault("name", {})
        if kind == "remove":
            names.pop(sub_name, None)
        else:
            names[sub_name] = value
        return
    if value_filter is not None:
        apply_filtered(container, name, value_filter, sub, value, kind)
        return
    if sub is not None:
        if name == "manager" and sub.lower() == "value":
            container["manager"] = None if kind == "remove" else {"value": value}
            return
        raise invalid_path(f"Unknown attribute {attribute}.{sub}.")
    if kind == "remove":
        container.pop(name, None)
    elif kind == "add" and isinstance(container.get(name), list):
        additions = value if isinstance(value, list) else [value]
        container[name] = [*container[name], *(a for a in additions if a not in container[name])]
    else:
        container[name] = value


def apply_filtered(
    container: dict[str, Any], name: str, value_filter: str, sub: str | None, value: Any, kind: str
) -> None:
    """``emails[type eq "work"].value`` and friends, on a multi-valued attribute."""
    elements = container.get(name)
    if elements is None:
        elements = []
    if not isinstance(elements, list):
        raise invalid_path(f"{name} is not multi-valued.")
    attribute, expected = parse_value_filter(value_filter)
    hits = [e for e in elements if matches(e, attribute, expected)]
    if kind == "remove":
        if sub is None:
            container[name] = [e for e in elements if e not in hits]
        else:
            for element in hits:
                element.pop(sub, None)
        return
    if not hits:
        if kind == "replace" and sub is None:
            raise ScimError(400, f"No {name} matches {value_filter}.", "noTarget")
        created = {attribute: expected}
        elements.append(created)
        hits = [created]
    for element in hits:
        if sub is None:
            if not isinstance(value, dict):
                raise invalid_value(f"The value for {name}[{value_filter}] must be an object.")
            element.update(value)
        else:
            element[sub] = value
    container[name] = elements
