"""My profile: a person's own display preferences (not identity data, so SCIM does not own them)."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_POST

from console.accounts.access import AUTHENTICATED, requires
from console.accounts.forms import TimeZoneForm
from console.accounts.models import Person
from console.core.errors import InvalidInput
from console.core.feedback import error_shown
from console.core.time_zones import viewer_zone


def time_zone_form(person: Any, data: Any = None) -> TimeZoneForm:
    """The form on My profile; its empty choice names the zone the person gets without one."""
    default = viewer_zone(Person(timezone=person.timezone))
    return TimeZoneForm(data, initial={"time_zone": person.time_zone}, default=default)


@require_POST
@requires(AUTHENTICATED, write=AUTHENTICATED)
def time_zone_set(request: HttpRequest) -> HttpResponse:
    """The zone my pages show times in (a display preference, not the SCIM ``timezone``)."""
    person: Any = request.user
    form = time_zone_form(person, request.POST)
    if form.is_valid():
        Person.objects.filter(pk=person.pk).update(time_zone=form.cleaned_data["time_zone"])
        person.time_zone = form.cleaned_data["time_zone"]
        messages.success(request, f"Times now show in {viewer_zone(person)}.")
    else:
        error_shown(request, InvalidInput("Choose a time zone from the list.", "time_zone"))
    return redirect("person_detail", pk=person.pk)
