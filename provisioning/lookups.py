"""Finding an account or a group in an application, trusting only what matches.

A look-up asks the application with a filter (``userName eq "…"``), and keeps only the
resources whose attribute equals what was asked: ``userName`` and a group's
``displayName`` without regard to case (RFC 7643 makes them case-insensitive), anything
else exactly. An application that cannot filter (its dialect profile says so, it refuses
the filter, or it answers resources that do not match) is not asked again: the account is
found in the console's own picture of the application, each candidate read back and
checked, or else by reading the whole list. Two resources that both match are refused,
never guessed between.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from integrations import dialect
from integrations.models import Integration, TargetGroup, TargetUser
from integrations.scim_client import ScimBadRequest, ScimClient, ScimClientError, ScimNotFound, escape_filter_value

# SCIM attributes compared without regard to case (RFC 7643: caseExact false).
CASE_INSENSITIVE = frozenset({"userName", "displayName", "emails.value"})


class AmbiguousMatch(ScimClientError):
    """Several resources match one look-up: the console will not choose between them."""


def matches(resource: Any, attribute: str, value: str) -> bool:
    """Whether ``resource`` has ``attribute`` equal to ``value`` (by SCIM's case rule for it)."""
    if not isinstance(resource, dict) or not resource.get("id"):
        return False
    found = resource.get(attribute)
    if not isinstance(found, str):
        return False
    if attribute in CASE_INSENSITIVE:
        return found.lower() == value.lower()
    return found == value


def only_one(kind: str, attribute: str, value: str, hits: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The one resource of ``hits`` (by id), None for none; several are refused."""
    distinct = {str(hit["id"]): hit for hit in hits}
    if len(distinct) > 1:
        ids = ", ".join(sorted(distinct)[:5])
        raise AmbiguousMatch(
            f"{len(distinct)} {kind} in the application have {attribute} {escape_filter_value(value)} "
            f"(ids {ids}); the console will not choose one. Remove the duplicate in the application, "
            "then retry."
        )
    return next(iter(distinct.values()), None)


class Listing:
    """A whole list of the application, read once and kept for the look-ups of one run."""

    def __init__(self) -> None:
        self.read: dict[str, list[dict[str, Any]]] = {}

    def resources(self, scim: ScimClient, endpoint: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        if endpoint not in self.read:
            self.read[endpoint] = [
                resource
                for page in scim.pages(endpoint, params=params)
                for resource in page
                if isinstance(resource, dict) and resource.get("id")
            ]
        return self.read[endpoint]

    def forget(self, endpoint: str) -> None:
        self.read.pop(endpoint, None)


def cannot_filter(integration: Integration) -> bool:
    """Whether the application is known not to filter: its profile, or its ServiceProviderConfig, says so."""
    return dialect.refused(integration, "filter") or (integration.capabilities or {}).get("filter") is False


def filter_trusted(
    scim: ScimClient, endpoint: str, attribute: str, value: str, params: dict[str, Any] | None = None
) -> tuple[bool, list[dict[str, Any]]]:
    """Ask the application with a filter: (whether its answer can be trusted, the resources that match).

    An answer is trusted only when every resource in it matches and it holds all there
    are (``totalResults``); a refusal (400, 501) or a resource that does not match teaches
    the integration's profile that the application cannot filter.
    """
    integration = scim.integration
    if cannot_filter(integration):
        return False, []
    query = {**(params or {}), "filter": f"{attribute} eq {escape_filter_value(value)}"}
    try:
        body = scim.get_json(endpoint, query)
    except ScimBadRequest as refusal:
        scim.learn("filter", False, f"{endpoint}: {refusal}")
        return False, []
    resources = [r for r in body.get("Resources") or [] if isinstance(r, dict)]
    hits = [r for r in resources if matches(r, attribute, value)]
    if len(hits) != len(resources):
        scim.learn(
            "filter",
            False,
            f"{endpoint}: asked for {attribute} eq {escape_filter_value(value)}, "
            f"the answer held {len(resources) - len(hits)} resources that do not match (the filter was ignored)",
        )
        return False, []
    total = body.get("totalResults")
    if isinstance(total, int) and total > len(resources):
        if len(resources) > 0 or total > 1:  # more matches than it sent: several answer to it
            raise AmbiguousMatch(
                f"{total} resources in the application have {attribute} {escape_filter_value(value)}; "
                "the console will not choose one. Remove the duplicate in the application, then retry."
            )
        return False, []  # it said one but sent none: read the list instead
    return True, hits


def find_user(
    scim: ScimClient,
    desired: dict[str, Any],
    *,
    endpoint: str,
    listing: Listing | None = None,
    settled: Callable[[str, str], tuple[bool, dict[str, Any] | None]] | None = None,
) -> dict[str, Any] | None:
    """The account of ``desired``: by externalId first (a re-hire keeps it), then by userName.

    ``settled`` answers what a combined look-up of the run already settled. The account
    returned always matches ``desired`` on the attribute it was found by.
    """
    for attribute in ("externalId", "userName"):
        value = desired.get(attribute)
        if not value:
            continue
        value = str(value)
        if settled is not None:
            known, found = settled(attribute, value)
            if known:
                if found is not None:
                    return found
                continue
        found = find_resource(scim, endpoint, attribute, value, kind="accounts", listing=listing)
        if found is not None:
            return found
    return None


def find_resource(
    scim: ScimClient,
    endpoint: str,
    attribute: str,
    value: str,
    *,
    kind: str,
    listing: Listing | None = None,
    params: dict[str, Any] | None = None,
) -> dict[str, Any] | None:
    """The one resource of ``endpoint`` whose ``attribute`` is ``value``; None when there is none."""
    trusted, hits = filter_trusted(scim, endpoint, attribute, value, params)
    if trusted:
        return only_one(kind, attribute, value, hits)
    # The application cannot filter: the console's picture first, each candidate read back.
    verified = [
        resource
        for remote_id in _pictured(scim.integration, endpoint, attribute, value)
        if (resource := _read(scim, f"{endpoint}/{remote_id}")) is not None and matches(resource, attribute, value)
    ]
    if verified:
        return only_one(kind, attribute, value, verified)
    # Not in the picture (made since the last extraction, say): the whole list.
    listing = listing or Listing()
    return only_one(
        kind,
        attribute,
        value,
        [r for r in listing.resources(scim, endpoint, params) if matches(r, attribute, value)],
    )


def _read(scim: ScimClient, path: str) -> dict[str, Any] | None:
    try:
        return scim.get_json(path)
    except ScimNotFound:
        return None


def _pictured(integration: Integration, endpoint: str, attribute: str, value: str) -> list[str]:
    """Remote ids the console's picture holds for the attribute (it may be out of date)."""
    if endpoint.strip("/") == integration.groups_endpoint.strip("/"):
        if attribute != "displayName":
            return []
        groups = TargetGroup.objects.filter(
            integration=integration, display_name__iexact=value, removed_at__isnull=True
        )
        return list(groups.values_list("remote_id", flat=True)[:10])
    field = {"userName": "user_name__iexact", "externalId": "external_id"}.get(attribute)
    if field is None:
        return []
    users = TargetUser.objects.filter(integration=integration, removed_at__isnull=True, **{field: value})
    return list(users.values_list("remote_id", flat=True)[:10])
