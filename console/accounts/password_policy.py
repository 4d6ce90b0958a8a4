"""A person whose password the console generated chooses their own before anything else."""

from __future__ import annotations

from collections.abc import Callable

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import redirect
from django.urls import reverse

# Where such a person may still go: choosing the password, signing out, and what is not a page.
ALLOWED_NAMES = ("password_change", "password_change_done", "logout", "login")
NOT_PAGES = ("/static/", "/healthz", "/readyz", "/api/", "/scim/", "/favicon.ico")


class PasswordChangeRequiredMiddleware:
    """Sends a signed-in person with ``password_change_required`` to *Change password*.

    Only pages signed in by session: API keys and SCIM are unaffected.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        user = getattr(request, "user", None)
        if (
            user is not None
            and user.is_authenticated
            and getattr(user, "password_change_required", False)
            and getattr(request, "api_key", None) is None
            and not request.path.startswith(NOT_PAGES)
            and request.path not in {reverse(name) for name in ALLOWED_NAMES}
        ):
            messages.info(request, "The password you signed in with was generated for you: choose your own now.")
            response: HttpResponse = redirect("password_change")
            return response
        return self.get_response(request)
