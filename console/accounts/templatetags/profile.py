"""``{% time_zone_panel person %}``: My profile's choice of the zone times show in."""

from __future__ import annotations

from typing import Any

from django import template

from console.accounts.profile_views import time_zone_form
from console.core.time_zones import viewer_zone

register = template.Library()


@register.filter(name="viewer_zone")
def viewer_zone_filter(person: Any) -> str:
    """The zone a person's pages show times in."""
    return viewer_zone(person)


@register.inclusion_tag("accounts/time_zone_panel.html", takes_context=True)
def time_zone_panel(context: template.Context, person: Any) -> dict[str, Any]:
    return {"form": time_zone_form(person), "zone": viewer_zone(person), "csrf_token": context.get("csrf_token")}
