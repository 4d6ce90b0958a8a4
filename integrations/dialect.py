"""The dialect profile of an integration: which form of each SCIM request the application accepts.

SCIM leaves much optional (filtering, ``count``, PATCH paths with filters, ETags) and
applications bend the rest. The console sends the standard form first; when the
application refuses it, the client falls back to an equivalent form and the profile
remembers which one worked, so the next request goes straight to it. The profile is
filled in four ways, each entry saying which: a *probe* against the live application
(``integrations/probe.py``), the *catalog* template the integration started from, what
actions and extractions *learned* on the way, and what the application's
ServiceProviderConfig says it does not support (read by *Test connection*).

Stored on ``Integration.dialect`` as ``{capability: {"value": ..., "source": ..., "at": ...,
"note": ...}}``. A capability that is absent is unknown: the standard form is tried.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.utils import timezone

from integrations.models import Integration


@dataclass(frozen=True)
class Capability:
    key: str
    label: str  # what the console relies on, in words
    fallback: str  # what the console does instead when the application refuses it


# The capabilities the console relies on. A value is True (works), False (refused) or, for
# ``member_reference``, which attribute a group's ``members.value`` holds ("id" or "userName").
CAPABILITIES: dict[str, Capability] = {
    c.key: c
    for c in [
        Capability(
            "filter",
            "Filtering users and groups (filter=userName eq …)",
            "Finds accounts in its own picture of the application, or by reading the whole list.",
        ),
        Capability(
            "filter_or",
            "Filters joined with or",
            "Looks each account up on its own instead of many in one request.",
        ),
        Capability(
            "filter_members",
            "Filtering groups by member (members.value eq …)",
            "Uses its own picture of the application's memberships.",
        ),
        Capability("count", "Paging with count", "Pages without count, at the application's own page size."),
        Capability(
            "patch_filter_path_remove",
            'Removing a member by filter path (members[value eq "…"])',
            "Removes members by a value list (path members, value [{value: …}]).",
        ),
        Capability(
            "patch_value_list_remove",
            "Removing members by a value list",
            "Removes members by filter path.",
        ),
        Capability(
            "patch_replace",
            "PATCH replace of user attributes",
            "Reads the user, changes it and writes it whole with PUT (If-Match where ETags are supported).",
        ),
        Capability("put", "PUT of a whole resource", "None: attribute changes need PATCH."),
        Capability("etag", "ETags and If-Match", "Writes without If-Match."),
        Capability(
            "active",
            "Deactivation with active: false",
            "None: the application must honour active for a deprovision.",
        ),
        Capability("hard_delete", "Deleting a user (DELETE)", "Deprovision (deactivate) instead."),
        Capability("groups", "A Groups endpoint", "Group actions are refused; extraction reads users only."),
        Capability(
            "member_reference",
            "What a group's members.value holds",
            "Sends the member's userName instead of its id when the application's groups hold names.",
        ),
    ]
}

SOURCES = {
    "probe": "Probe",
    "catalog": "Catalog template",
    "learned": "Learned from a refusal",
    "config": "The application's ServiceProviderConfig",
}


def value(integration: Integration, capability: str) -> Any:
    """What the profile says of ``capability``: True, False, a value, or None when unknown."""
    entry = (integration.dialect or {}).get(capability)
    return entry.get("value") if isinstance(entry, dict) else None


def refused(integration: Integration, capability: str) -> bool:
    """Whether the application is known to refuse the standard form of ``capability``."""
    return value(integration, capability) is False


def learn(integration: Integration, capability: str, learned: Any, *, note: str = "", source: str = "learned") -> None:
    """Remember what ``capability`` is for the integration, in the database and on ``integration``.

    Read and written under the integration's row lock, so two workers learning at once keep
    both entries. Saving the profile does not touch ``updated_at`` (nor the connection pools
    keyed on it).
    """
    known = (integration.dialect or {}).get(capability)
    if isinstance(known, dict) and (known.get("value"), known.get("source")) == (learned, source):
        return  # nothing new: no write
    learn_many(integration, {capability: learned}, source=source, notes={capability: note})


def learn_many(
    integration: Integration, found: dict[str, Any], *, source: str, notes: dict[str, str] | None = None
) -> None:
    """Remember several capabilities at once (a probe's or a template's findings), as :func:`learn` does."""
    now = timezone.now().isoformat()
    with transaction.atomic():
        row = Integration.all_objects.select_for_update().only("pk", "dialect").get(pk=integration.pk)
        profile = dict(row.dialect or {})
        for capability, learned in found.items():
            if capability not in CAPABILITIES:
                raise ValueError(f"unknown dialect capability: {capability}")
            profile[capability] = {
                "value": learned,
                "source": source,
                "at": now,
                "note": ((notes or {}).get(capability) or "")[:500],
            }
        Integration.all_objects.filter(pk=integration.pk).update(dialect=profile)
    integration.dialect = profile


def rows(integration: Integration) -> list[dict[str, Any]]:
    """The profile as the integration page shows it: each capability, what is known, what the console does."""
    out = []
    for capability in CAPABILITIES.values():
        entry = (integration.dialect or {}).get(capability.key)
        known = entry.get("value") if isinstance(entry, dict) else None
        if known is None:
            state, does = "Not known yet", "Tries the standard form first."
        elif known is False:
            state, does = "Refused", capability.fallback
        elif known is True:
            state, does = "Works", "Uses the standard form."
        else:
            state, does = f"Holds {known}", (capability.fallback if known != "id" else "Uses the standard form.")
        out.append(
            {
                "key": capability.key,
                "label": capability.label,
                "state": state,
                "works": known,
                "console_does": does,
                "source": SOURCES.get(entry.get("source", ""), "") if isinstance(entry, dict) else "",
                "at": entry.get("at") if isinstance(entry, dict) else None,
                "note": entry.get("note", "") if isinstance(entry, dict) else "",
            }
        )
    return out
