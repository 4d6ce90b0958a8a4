"""SCIM filters (RFC 7644 §3.4.2.2) translated into Django ``Q`` objects.

The database does the filtering; nothing is fetched and filtered in Python. An unknown
attribute, operator or malformed expression raises ``invalidFilter``: a filter is never
silently widened.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from django.db.models import Model, Q, QuerySet, Value
from django.db.models.functions import Lower
from django.utils.dateparse import parse_datetime

from console.scim.errors import invalid_filter
from console.scim.ids import id_q, parse_id

Kind = Literal["string", "exact", "bool", "datetime", "int", "id"]
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
CORE_USER = "urn:ietf:params:scim:schemas:core:2.0:User"
CORE_GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"


@dataclass(frozen=True)
class Attribute:
    """Where a SCIM attribute lives in the database and how it compares."""

    lookup: str
    kind: Kind = "string"  # "string" compares case-insensitively, "exact" case-sensitively
    multi: bool = False  # lives on a related row (emails, members)
    # kind "id": a resource's SCIM id (a UUID) is compared here, its old integer key on ``lookup``
    scim_lookup: str = ""


USER_ATTRIBUTES: dict[str, Attribute] = {
    "id": Attribute("pk", "id", scim_lookup="scim_id"),
    "username": Attribute("username"),
    "externalid": Attribute("external_id", "exact"),
    "displayname": Attribute("display_name"),
    "nickname": Attribute("nick_name"),
    "title": Attribute("title"),
    "usertype": Attribute("user_type"),
    "preferredlanguage": Attribute("preferred_language"),
    "locale": Attribute("locale"),
    "timezone": Attribute("timezone"),
    "active": Attribute("is_active", "bool"),
    "name.givenname": Attribute("given_name"),
    "name.familyname": Attribute("family_name"),
    "name.middlename": Attribute("middle_name"),
    "name.formatted": Attribute("formatted_name"),
    "name.honorificprefix": Attribute("honorific_prefix"),
    "name.honorificsuffix": Attribute("honorific_suffix"),
    "emails": Attribute("email_addresses__value", multi=True),
    "emails.value": Attribute("email_addresses__value", multi=True),
    "emails.type": Attribute("email_addresses__type", multi=True),
    "emails.primary": Attribute("email_addresses__primary", "bool", multi=True),
    "roles": Attribute("roles__name", multi=True),
    "roles.value": Attribute("roles__name", multi=True),
    "meta.created": Attribute("created_at", "datetime"),
    "meta.lastmodified": Attribute("updated_at", "datetime"),
    "employeenumber": Attribute("employee_number"),
    "costcenter": Attribute("cost_center"),
    "organization": Attribute("organization"),
    "division": Attribute("division"),
    "department": Attribute("department"),
    "manager": Attribute("manager_id", "id", scim_lookup="manager__scim_id"),
    "manager.value": Attribute("manager_id", "id", scim_lookup="manager__scim_id"),
}
ENTERPRISE_ONLY = {"employeenumber", "costcenter", "organization", "division", "department", "manager", "manager.value"}

GROUP_ATTRIBUTES: dict[str, Attribute] = {
    "id": Attribute("pk", "id", scim_lookup="scim_id"),
    "displayname": Attribute("name"),
    "externalid": Attribute("external_id", "exact"),
    "members": Attribute("memberships__person_id", "id", multi=True, scim_lookup="memberships__person__scim_id"),
    "members.value": Attribute("memberships__person_id", "id", multi=True, scim_lookup="memberships__person__scim_id"),
    "meta.created": Attribute("created_at", "datetime"),
    "meta.lastmodified": Attribute("updated_at", "datetime"),
}

TOKEN = re.compile(
    r"""\s*(?:
        (?P<string>"(?:[^"\\]|\\.)*")
      | (?P<lparen>\() | (?P<rparen>\)) | (?P<lbracket>\[) | (?P<rbracket>\])
      | (?P<number>-?\d+(?:\.\d+)?(?![\w:.]))
      | (?P<word>[A-Za-z$][\w:.$-]*)
    )""",
    re.VERBOSE,
)
COMPARISONS = {"eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le"}


@dataclass
class Token:
    kind: str
    text: str


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    position = 0
    text = text.strip()
    while position < len(text):
        match = TOKEN.match(text, position)
        if match is None or match.end() == position:
            raise invalid_filter(f"Unexpected text at position {position}: {text[position : position + 20]!r}.")
        kind = match.lastgroup or ""
        tokens.append(Token(kind, match.group(kind)))
        position = match.end()
        while position < len(text) and text[position].isspace():
            position += 1
    return tokens


class FilterParser:
    """Recursive descent over: or → and → not/parentheses/value path/comparison."""

    def __init__(
        self, text: str, attributes: dict[str, Attribute], extension: str | None, *, own_keys: bool = True
    ) -> None:
        self.tokens = tokenize(text)
        self.position = 0
        self.attributes = attributes
        self.extension = extension
        self.own_keys = own_keys  # whether a numeric ``id`` names this resource type's key
        self.uses_related_rows = False  # set when an attribute lives on related rows (a join)
        if not self.tokens:
            raise invalid_filter("The filter is empty.")

    def parse(self) -> Q:
        condition = self.parse_or()
        if self.position != len(self.tokens):
            raise invalid_filter(f"Unexpected {self.tokens[self.position].text!r} in the filter.")
        return condition

    def peek(self) -> Token | None:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def take(self, kind: str | None = None, word: str | None = None) -> Token:
        token = self.peek()
        if token is None:
            raise invalid_filter("The filter ends too early.")
        if kind and token.kind != kind:
            raise invalid_filter(f"Expected {kind} but found {token.text!r}.")
        if word and token.text.lower() != word:
            raise invalid_filter(f"Expected {word!r} but found {token.text!r}.")
        self.position += 1
        return token

    def at_word(self, *words: str) -> bool:
        token = self.peek()
        return token is not None and token.kind == "word" and token.text.lower() in words

    def parse_or(self, prefix: str = "") -> Q:
        condition = self.parse_and(prefix)
        while self.at_word("or"):
            self.take()
            condition |= self.parse_and(prefix)
        return condition

    def parse_and(self, prefix: str = "") -> Q:
        condition = self.parse_unary(prefix)
        while self.at_word("and"):
            self.take()
            condition &= self.parse_unary(prefix)
        return condition

    def parse_unary(self, prefix: str) -> Q:
        if self.at_word("not"):
            self.take()
            self.take("lparen")
            inner = self.parse_or(prefix)
            self.take("rparen")
            return ~inner
        token = self.peek()
        if token is not None and token.kind == "lparen":
            self.take()
            inner = self.parse_or(prefix)
            self.take("rparen")
            return inner
        path = self.take("word").text
        nxt = self.peek()
        if nxt is not None and nxt.kind == "lbracket":
            if prefix:
                raise invalid_filter("Value filters cannot be nested.")
            self.take()
            inner = self.parse_or(prefix=path)
            self.take("rbracket")
            return inner
        return self.comparison(f"{prefix}.{path}" if prefix else path)

    def comparison(self, path: str) -> Q:
        attribute, name = self.resolve(path)
        operator = self.take("word").text.lower()
        if operator == "pr":
            return present(attribute)
        if operator not in COMPARISONS:
            raise invalid_filter(f"Unknown operator {operator!r}.")
        token = self.take()
        value = literal(token)
        if attribute.kind == "id":
            return compare_id(attribute, name, operator, value, keys=self.own_keys or attribute.lookup != "pk")
        return compare(attribute, name, operator, value)

    def resolve(self, path: str) -> tuple[Attribute, str]:
        name = path
        lowered = name.lower()
        # Only the resource's own core schema: a Group attribute asked of Users is not supported.
        core = CORE_USER if self.attributes is USER_ATTRIBUTES else CORE_GROUP
        if lowered.startswith(core.lower() + ":"):
            lowered = lowered[len(core) + 1 :]
        if self.extension and lowered.startswith(self.extension.lower() + ":"):
            lowered = lowered[len(self.extension) + 1 :]
        elif lowered in ENTERPRISE_ONLY and self.attributes is USER_ATTRIBUTES:
            pass  # RFC 7644 allows the short name when it is unambiguous
        attribute = self.attributes.get(lowered)
        if attribute is None:
            raise invalid_filter(f"Filtering on {name!r} is not supported.")
        self.uses_related_rows |= attribute.multi
        return attribute, name


def json_string(text: str) -> str:
    """A quoted filter value, read as the JSON string it is (RFC 7644 §3.4.2.2).

    ``\\u00e9``, ``\\"`` and ``\\\\`` escapes decode; other characters, non-ASCII ones
    included, stay exactly as written.
    """
    try:
        value = json.loads(text, strict=False)
    except ValueError:
        raise invalid_filter(f"The string {text} has an invalid escape.") from None
    if not isinstance(value, str):
        raise invalid_filter(f"Expected a string but found {text}.")
    return value


def literal(token: Token) -> Any:
    if token.kind == "string":
        return json_string(token.text)
    if token.kind == "number":
        return float(token.text) if "." in token.text else int(token.text)
    if token.kind == "word" and token.text.lower() in {"true", "false", "null"}:
        return {"true": True, "false": False, "null": None}[token.text.lower()]
    raise invalid_filter(f"Expected a value but found {token.text!r}.")


def present(attribute: Attribute) -> Q:
    if attribute.kind == "string" or attribute.kind == "exact":
        return Q(**{f"{attribute.lookup}__isnull": False}) & ~Q(**{attribute.lookup: ""})
    return Q(**{f"{attribute.lookup}__isnull": False})


def compare_id(attribute: Attribute, name: str, operator: str, value: Any, *, keys: bool = True) -> Q:
    """``id``, ``members.value``, ``manager``: a SCIM id, or an old integer key where ``keys``.

    A value that names no resource matches none (``ne``: all); ids have no order.
    """
    if value is None:
        return compare(attribute, name, operator, value)
    if operator not in {"eq", "ne"}:
        raise invalid_filter(f"{name!r} is an id: compare it with eq or ne.")
    ident = parse_id(value)
    if ident is None or (isinstance(ident, int) and not keys):
        condition = Q(**{f"{attribute.lookup}__in": []})
    else:
        condition = id_q(ident, key=attribute.lookup, scim_id=attribute.scim_lookup)
    return condition if operator == "eq" else ~condition


def compare(attribute: Attribute, name: str, operator: str, value: Any) -> Q:
    lookup = attribute.lookup
    if value is None:
        if operator in {"eq", "ne"}:
            condition = ~present(attribute)
            return condition if operator == "eq" else ~condition
        raise invalid_filter(f"{operator} null is not meaningful for {name!r}.")
    if attribute.kind == "bool":
        if not isinstance(value, bool) or operator not in {"eq", "ne"}:
            raise invalid_filter(f"{name!r} is a boolean: use eq or ne with true or false.")
        condition = Q(**{lookup: value})
        return condition if operator == "eq" else ~condition
    if attribute.kind == "datetime":
        if not isinstance(value, str) or parse_datetime(value) is None:
            raise invalid_filter(f'{name!r} takes a date-time such as "2026-01-31T12:00:00Z".')
        value = parse_datetime(value)
        assert isinstance(value, datetime)
    if attribute.kind == "int":
        try:
            value = int(value)
        except (TypeError, ValueError):
            raise invalid_filter(f"{name!r} takes a numeric id.") from None
    if attribute.kind in {"string", "exact"} and not isinstance(value, str):
        raise invalid_filter(f"{name!r} takes a string value.")
    insensitive = "i" if attribute.kind == "string" else ""
    if operator in {"co", "sw", "ew"}:
        if attribute.kind not in {"string", "exact"}:
            raise invalid_filter(f"{operator} applies to strings, not to {name!r}.")
        word = {"co": "contains", "sw": "startswith", "ew": "endswith"}[operator]
        return Q(**{f"{lookup}__{insensitive}{word}": value})
    if operator in {"eq", "ne"}:
        # lower(column) = lower(value): the form the case-insensitive indexes are built on
        # (userName's unique index, emails' value index), so equality is an index lookup.
        condition = Q(**{f"{lookup}__lower": Lower(Value(value))}) if insensitive else Q(**{lookup: value})
        return condition if operator == "eq" else ~condition
    ordered = Q(**{f"{lookup}__{operator.replace('ge', 'gte').replace('le', 'lte')}": value})
    # An absent attribute (stored as "") is not less than anything.
    return ordered & present(attribute) if attribute.kind in {"string", "exact"} else ordered


def parse_filter(text: str, *, resource: Literal["User", "Group"], own_keys: bool = True) -> FilterParser:
    """``own_keys``: a numeric ``id`` names this type's old integer key; not at the root, where
    ``id eq "71"`` would otherwise find both user 71 and team 71."""
    if len(text) > 4000:
        raise invalid_filter("The filter is too long.")
    if resource == "User":
        return FilterParser(text, USER_ATTRIBUTES, ENTERPRISE, own_keys=own_keys)
    return FilterParser(text, GROUP_ATTRIBUTES, None, own_keys=own_keys)


def scim_filter_to_q(text: str, *, resource: Literal["User", "Group"]) -> Q:
    return parse_filter(text, resource=resource).parse()


def scim_filter_apply[M: Model](
    queryset: QuerySet[M], text: str, *, resource: Literal["User", "Group"], own_keys: bool = True
) -> QuerySet[M]:
    """``queryset`` narrowed by the SCIM filter ``text``.

    A filter on a single-valued attribute is applied as it is (an index lookup where one
    exists). One that reaches related rows (emails, roles, members) would repeat a
    resource once per matching row, so it selects the matching keys instead.
    """
    parser = parse_filter(text, resource=resource, own_keys=own_keys)
    condition = parser.parse()
    if parser.uses_related_rows:
        return queryset.filter(pk__in=queryset.model._default_manager.filter(condition).values("pk"))
    return queryset.filter(condition)
