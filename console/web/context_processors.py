"""Navigation for the base layout: only sections that exist and that the person may see."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.urls import NoReverseMatch, reverse

from console.accounts.permissions import Perm

# (label, url name, permission). A section whose URL does not exist yet is hidden.
SECTIONS = [
    ("Dashboard", "dashboard", Perm.VIEW),
    ("Integrations", "integration_list", Perm.VIEW),
    ("Actions", "action_list", Perm.VIEW),
    ("Approvals", "approval_inbox", Perm.APPROVE),
    ("People & Teams", "person_list", Perm.VIEW),
    ("Audit", "audit_list", Perm.VIEW),
    ("Settings", "settings", Perm.VIEW),
]


def navigation(request: HttpRequest) -> dict[str, Any]:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"nav_sections": []}
    sections = []
    for label, url_name, perm in SECTIONS:
        if not user.has_console_permission(perm):
            continue
        try:
            url = reverse(url_name)
        except NoReverseMatch:
            continue
        sections.append(
            {"label": label, "url": url, "active": (request.path.startswith(url) and url != "/") or request.path == url}
        )
    return {"nav_sections": sections, "can": {p.name.lower(): user.has_console_permission(p) for p in Perm}}
