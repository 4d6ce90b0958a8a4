"""Each signed-in person sees times in their own zone (UTC unless they chose one)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, HttpResponseBase
from django.utils import timezone

from console.core.display import valid_zone

# The APIs answer in UTC whoever asks: clients compare times, they do not read them.
MACHINE_PATHS = ("/api/", "/scim/")


def viewer_zone(person: Any) -> str:
    """The zone a person's pages use: their choice, else the SCIM ``timezone`` where it is a
    known IANA zone, else UTC."""
    return valid_zone(getattr(person, "time_zone", "")) or valid_zone(getattr(person, "timezone", "")) or "UTC"


class ViewerTimeZoneMiddleware:
    """Activates the viewer's zone for the request, so every rendered time is theirs."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated and not request.path.startswith(MACHINE_PATHS):
            timezone.activate(viewer_zone(user))
        else:
            timezone.deactivate()
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()
