"""One confirmation for every click that changes an application (templates/includes/confirm.html).

A form that needs one carries ``data-confirm`` (what will happen) and ``data-confirm-count`` (how
many accounts it touches), and a hidden ``confirm=ask``. With JavaScript, static/js/console.js
asks in a <dialog> and posts with ``confirm=done`` and the reason; without it, the form posts
``confirm=ask`` and the view answers this page instead, which asks the same and posts again.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.http import url_has_allowed_host_and_scheme

# Fields of the asking form that the confirmation page does not carry on as they came.
_OWN_FIELDS = {"csrfmiddlewaretoken", "confirm", "confirm_text", "confirm_count", "confirm_noun", "confirm_label"}


def reason_of(request: HttpRequest) -> str:
    """The optional reason given in the confirmation, trimmed and capped as audit details keep it."""
    return str(request.POST.get("reason", "")).strip()[:1000]


def confirmation_page(request: HttpRequest, *, count: int | None = None, text: str = "") -> HttpResponse | None:
    """The confirmation page when the form asked for one and no script asked first, else ``None``.

    ``count`` and ``text`` replace what the form said where the view knows better (the accounts
    a bulk request selects).
    """
    if request.method != "POST" or request.POST.get("confirm") != "ask":
        return None
    posted = request.POST
    reason_name = "comment" if "comment" in posted else "reason"
    fields = [
        (name, value)
        for name, values in posted.lists()
        for value in values
        if name not in _OWN_FIELDS and name != reason_name
    ]
    given = posted.get("confirm_count", "")
    back = request.headers.get("referer", "")
    context = {
        "action": request.get_full_path(),
        "fields": fields,
        "text": text or posted.get("confirm_text", "") or "This changes the application.",
        "count": count if count is not None else (int(given) if given.isdecimal() else None),
        "label": posted.get("confirm_label", "") or "Confirm",
        "reason_name": reason_name,
        "reason": posted.get(reason_name, ""),
        "noun": posted.get("confirm_noun", "") or "account",
        "back": back if url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}) else "",
    }
    return render(request, "includes/confirm_page.html", context)
