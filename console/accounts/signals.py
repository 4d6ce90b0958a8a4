"""Sign-in events go to the audit log; identity events are announced to whoever automates on them."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.dispatch import Signal, receiver
from django.http import HttpRequest

from console.accounts.backends import FAILURE_CAUSE
from console.audit.services import audit_record

# Sent inside the transaction that wrote identity events (``count`` of them): lifecycle
# automation consumes them once it commits.
identity_events_recorded = Signal()


@receiver(user_logged_in)
def on_signed_in(sender: Any, request: HttpRequest, user: Any, **kwargs: Any) -> None:
    # How: "local" (a password, and the second factor used, if any) or "oidc" (with the provider).
    details = getattr(request, "sign_in_details", None) or {"method": "local"}
    audit_record(verb="auth.signed_in", actor=user, target=user, request=request, details=details)


@receiver(user_logged_out)
def on_signed_out(sender: Any, request: HttpRequest, user: Any, **kwargs: Any) -> None:
    if user is not None:
        audit_record(verb="auth.signed_out", actor=user, target=user, request=request)


@receiver(user_login_failed)
def on_sign_in_failed(
    sender: Any, credentials: dict[str, Any], request: HttpRequest | None = None, **kwargs: Any
) -> None:
    username = str(credentials.get("username", ""))[:150]
    audit_record(
        verb="auth.sign_in_failed",
        target_type="accounts.person",
        target_label=username,
        details={
            "username": username,
            # The cause the password check left on the request, unless the sender names one.
            "reason": kwargs.get("reason") or getattr(request, FAILURE_CAUSE, "bad credentials"),
            "method": kwargs.get("method", "local"),
            **({"provider": kwargs["provider"]} if kwargs.get("provider") else {}),
        },
        request=request,
    )
