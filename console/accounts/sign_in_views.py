"""Sign-in through the identity provider (OpenID Connect), and the second factor of password sign-in."""

from __future__ import annotations

import time
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.signals import user_login_failed
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render, resolve_url
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache

from console.accounts.access import AUTHENTICATED, PUBLIC, acting_person, requires
from console.accounts.models import Person
from console.accounts.oidc import (
    METHOD_SESSION_FIELD,
    OidcConfig,
    OidcError,
    oidc_begin,
    oidc_complete,
    oidc_person,
    oidc_signed_in,
)
from console.accounts.permissions import UI_PERMISSION
from console.accounts.second_factor import (
    SecondFactorError,
    confirmed_factor,
    provisioning_uri,
    qr_svg,
    recovery_codes_regenerate,
    second_factor_begin,
    second_factor_check,
    second_factor_confirm,
    second_factor_remove,
)
from console.accounts.selectors import active_local_admins
from console.accounts.throttling import sign_in_attempt, sign_in_succeeded
from console.core.crypto import decrypt, encrypt
from console.core.feedback import error_shown
from console.core.models import ConsoleSettings
from console.core.request_meta import client_address

BACKEND = "console.accounts.backends.PersonBackend"
PENDING_SECOND_FACTOR = "second_factor_pending"
PENDING_SECOND_FACTOR_SECONDS = 5 * 60
NEW_RECOVERY_CODES = "new_recovery_codes"


def safe_next(request: HttpRequest, candidate: str | None) -> str:
    if candidate and url_has_allowed_host_and_scheme(
        candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return candidate
    return resolve_url(settings.LOGIN_REDIRECT_URL)


def sign_in_refused(request: HttpRequest, *, username: str, reason: str, method: str, provider: str = "") -> None:
    """One audit event per refused sign-in, with its cause (console/accounts/signals.py writes it)."""
    user_login_failed.send(
        sender=__name__,
        credentials={"username": username},
        request=request,
        reason=reason,
        method=method,
        provider=provider,
    )


def sign_in_complete(request: HttpRequest, person: Person, *, method: str, **details: Any) -> None:
    """Sign ``person`` in; the audit event says how (``auth.signed_in`` with method and provider)."""
    request.sign_in_details = {"method": method, **details}  # type: ignore[attr-defined]
    login(request, person, backend=BACKEND)
    request.session[METHOD_SESSION_FIELD] = method


# --- OpenID Connect ----------------------------------------------------------------------


@never_cache
@requires(PUBLIC)
def oidc_start(request: HttpRequest) -> HttpResponse:
    """Send the browser to the identity provider."""
    next_url = safe_next(request, request.GET.get("next"))
    try:
        return redirect(oidc_begin(request, next_url=next_url))
    except OidcError as exc:
        error_shown(request, exc)
        return redirect("login")


@never_cache
@requires(PUBLIC)
def oidc_callback(request: HttpRequest) -> HttpResponse:
    """The provider sends the browser back here with a code; sign in whoever the ID token names, if they may."""
    current = ConsoleSettings.load()
    provider = current.oidc_issuer
    claims: dict[str, Any] = {}
    try:
        claims, id_token, next_url = oidc_complete(request)
        person = oidc_person(claims, request=request)
    except OidcError as exc:
        username = str(claims.get(current.oidc_username_claim) or claims.get("sub") or "")
        sign_in_refused(request, username=username, reason=exc.cause, method="oidc", provider=provider)
        error_shown(request, exc)
        return redirect("login")
    sign_in_complete(request, person, method="oidc", provider=provider)
    oidc_signed_in(request, id_token=id_token)
    return redirect(safe_next(request, next_url))


def is_local_admin(person: Person) -> bool:
    """A break-glass account: local, active, holding the admin role."""
    return active_local_admins().filter(pk=person.pk).exists()


def oidc_offered(current: ConsoleSettings) -> dict[str, Any] | None:
    """What the sign-in page shows of the provider, or ``None`` where it is not set up."""
    if not current.oidc_ready:
        return None
    config = OidcConfig.from_settings(current)
    return {"label": config.label, "passwords_for_admins_only": current.password_sign_in_admins_only}


# --- The second factor at sign-in --------------------------------------------------------


def second_factor_needed(person: Person) -> bool:
    return confirmed_factor(person) is not None or ConsoleSettings.load().second_factor_required


def second_factor_defer(request: HttpRequest, person: Person, *, next_url: str) -> HttpResponse:
    """The password was right; the sign-in waits for the second factor (or its enrolment)."""
    request.session.cycle_key()
    request.session[PENDING_SECOND_FACTOR] = {
        "person": person.pk,
        "hash": person.get_session_auth_hash(),
        "next": next_url,
        "until": int(time.time()) + PENDING_SECOND_FACTOR_SECONDS,
    }
    return redirect("second_factor_sign_in")


def _pending_person(request: HttpRequest) -> tuple[Person | None, dict[str, Any]]:
    pending = request.session.get(PENDING_SECOND_FACTOR) or {}
    if not pending or pending.get("until", 0) < time.time():
        return None, {}
    person = Person.objects.filter(pk=int(pending.get("person") or 0), is_active=True).first()
    # A password changed or sessions ended meanwhile: the half-done sign-in ends too.
    if person is None or person.get_session_auth_hash() != pending.get("hash"):
        return None, {}
    return person, pending


@never_cache
@requires(PUBLIC, write=PUBLIC)
def second_factor_sign_in(request: HttpRequest) -> HttpResponse:
    """After the password: a code from the authenticator app, or its enrolment where it is required."""
    person, pending = _pending_person(request)
    if person is None:
        request.session.pop(PENDING_SECOND_FACTOR, None)
        if request.method == "POST":
            messages.error(request, "That sign-in took too long or was ended. Sign in again.")
        return redirect("login")
    enrolling = confirmed_factor(person) is None
    error = ""
    address = client_address(request)
    if request.method == "POST":
        code = request.POST.get("code", "")
        verdict = sign_in_attempt(username=person.username, address=address)
        if not verdict.allowed:
            error = (
                f"Too many failed sign-ins. Try again in {max(1, round(verdict.retry_after_seconds / 60))} minute(s)."
            )
            sign_in_refused(request, username=person.username, reason="throttled", method="local")
        else:
            try:
                if enrolling:
                    codes = second_factor_confirm(person=person, code=code, request=request)
                    used = "totp"
                else:
                    used = second_factor_check(person=person, code=code, request=request)
                    codes = []
            except SecondFactorError as exc:
                error = str(exc)
                sign_in_refused(request, username=person.username, reason="bad second factor", method="local")
            else:
                sign_in_succeeded(username=person.username, address=address)
                if not person.has_console_permission(UI_PERMISSION):
                    request.session.pop(PENDING_SECOND_FACTOR, None)
                    sign_in_refused(request, username=person.username, reason="no console role", method="local")
                    messages.error(request, "Your account has no console role, so it cannot sign in here.")
                    return redirect("login")
                next_url = str(pending.get("next") or "")
                request.session.pop(PENDING_SECOND_FACTOR, None)
                sign_in_complete(request, person, method="local", second_factor=used)
                if codes:
                    request.session[NEW_RECOVERY_CODES] = encrypt("\n".join(codes))
                    return redirect("second_factor")
                return redirect(safe_next(request, next_url))
    factor = getattr(person, "second_factor", None) if enrolling else None
    if enrolling and factor is None:
        factor = second_factor_begin(person=person)
    context = {
        "enrolling": enrolling,
        "error": error,
        "qr_svg": qr_svg(factor) if factor else "",
        "secret": factor.secret if factor else "",
        "uri": provisioning_uri(factor) if factor else "",
    }
    response = render(request, "accounts/second_factor_sign_in.html", context, status=400 if error else 200)
    response["Cache-Control"] = "no-store"  # the enrolment page holds the secret
    return response


# --- The second factor on the account page ----------------------------------------------


@never_cache
@requires(AUTHENTICATED, write=AUTHENTICATED)
def second_factor_manage(request: HttpRequest) -> HttpResponse:
    """Set up, replace the recovery codes of, or remove one's authenticator app."""
    person = acting_person(request)
    current = ConsoleSettings.load()
    error = ""
    if request.method == "POST":
        step = request.POST.get("step", "")
        code = request.POST.get("code", "")
        try:
            if step == "start":
                second_factor_begin(person=person)
            elif step == "confirm":
                codes = second_factor_confirm(person=person, code=code, request=request)
                request.session[NEW_RECOVERY_CODES] = encrypt("\n".join(codes))
                messages.success(request, "Your authenticator app is set up.")
                return redirect("second_factor")
            elif step == "recovery":
                codes = recovery_codes_regenerate(person=person, code=code, request=request)
                request.session[NEW_RECOVERY_CODES] = encrypt("\n".join(codes))
                return redirect("second_factor")
            elif step == "remove":
                second_factor_remove(person=person, code=code, required=current.second_factor_required, request=request)
                messages.success(request, "Your authenticator app is removed.")
                return redirect("second_factor")
            else:
                error = "Choose what to do."
        except SecondFactorError as exc:
            error = str(exc)
    sealed = request.session.pop(NEW_RECOVERY_CODES, None) if request.method == "GET" else None
    factor = getattr(person, "second_factor", None)
    enrolling = factor is not None and factor.confirmed_at is None
    context = {
        "factor": factor,
        "confirmed": factor is not None and factor.confirmed_at is not None,
        "enrolling": enrolling,
        "qr_svg": qr_svg(factor) if enrolling and factor else "",
        "secret": factor.secret if enrolling and factor else "",
        "uri": provisioning_uri(factor) if enrolling and factor else "",
        "recovery_left": factor.recovery_codes.filter(used_at__isnull=True).count() if factor else 0,
        "new_codes": decrypt(sealed).split("\n") if sealed else [],
        "required": current.second_factor_required,
        "error": error,
    }
    response = render(request, "accounts/second_factor.html", context, status=400 if error else 200)
    response["Cache-Control"] = "no-store"  # the page may hold the secret or new recovery codes
    return response
