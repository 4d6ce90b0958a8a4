"""A second factor for password sign-in: an authenticator app (TOTP, RFC 6238) and recovery codes.

pyotp computes the codes; segno draws the enrolment QR code as inline SVG (no script, no
image request). A code is taken once: the time step of the last one taken is stored by a
conditional update, so a code seen over a shoulder, or sent twice at once, signs in once.
Recovery codes are random, shown once, stored as hashes and each used by one update.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime

import pyotp
import segno
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from console.accounts.models import Person, RecoveryCode, SecondFactor
from console.audit.services import audit_record
from console.core.errors import InvalidInput

ISSUER_NAME = "Lifecycle Console"
RECOVERY_CODE_COUNT = 10
# Codes from the step before and after are taken too: clocks drift, and typing takes time.
VALID_WINDOW = 1


class SecondFactorError(InvalidInput):
    """The code was not right, or the change is not allowed (400)."""


def _hash(code: str) -> str:
    return hashlib.sha256(_normalized(code).encode()).hexdigest()


def _normalized(code: str) -> str:
    return "".join(ch for ch in code.lower() if ch.isalnum())


def confirmed_factor(person: Person) -> SecondFactor | None:
    return SecondFactor.objects.filter(person=person, confirmed_at__isnull=False).first()


def second_factor_begin(*, person: Person) -> SecondFactor:
    """A new, unconfirmed secret for ``person`` (replacing an unconfirmed one); a confirmed one stays."""
    factor = SecondFactor.objects.filter(person=person).first()
    if factor is not None and factor.confirmed_at is not None:
        raise SecondFactorError("An authenticator app is already set up; remove it first.")
    if factor is None:
        return SecondFactor.objects.create(person=person, secret=pyotp.random_base32())
    factor.secret = pyotp.random_base32()
    factor.last_step = -1
    factor.save(update_fields=["secret", "last_step"])
    return factor


def provisioning_uri(factor: SecondFactor) -> str:
    return pyotp.TOTP(factor.secret).provisioning_uri(name=factor.person.username, issuer_name=ISSUER_NAME)


def qr_svg(factor: SecondFactor) -> str:
    """The enrolment QR code as an inline ``<svg>`` element."""
    return str(segno.make(provisioning_uri(factor), error="m").svg_inline(scale=4, dark="#111", light="#fff"))


def _take_code(factor: SecondFactor, code: str, *, at: datetime | None = None) -> bool:
    code = _normalized(code)
    if not (code.isdigit() and len(code) == 6):
        return False
    totp = pyotp.TOTP(factor.secret)
    now = at or timezone.now()
    current = totp.timecode(now)
    for step in range(current - VALID_WINDOW, current + VALID_WINDOW + 1):
        if hmac.compare_digest(totp.generate_otp(step), code):
            # One conditional update: the same code (or an older one) is never taken twice.
            return bool(SecondFactor.objects.filter(pk=factor.pk, last_step__lt=step).update(last_step=step))
    return False


def _new_recovery_codes(factor: SecondFactor) -> list[str]:
    codes = [f"{secrets.token_hex(4)}-{secrets.token_hex(4)}" for _ in range(RECOVERY_CODE_COUNT)]
    factor.recovery_codes.all().delete()
    RecoveryCode.objects.bulk_create(RecoveryCode(factor=factor, code_hash=_hash(code)) for code in codes)
    return codes


@transaction.atomic
def second_factor_confirm(*, person: Person, code: str, request: HttpRequest | None = None) -> list[str]:
    """Confirm enrolment with the app's first code; returns the recovery codes, to be shown once."""
    factor = SecondFactor.objects.select_for_update().filter(person=person, confirmed_at__isnull=True).first()
    if factor is None:
        raise SecondFactorError("Start setting up an authenticator app first.")
    if not _take_code(factor, code):
        audit_record(
            verb="auth.second_factor_failed",
            actor=person,
            target=person,
            request=request,
            details={"during": "enrolment"},
        )
        raise SecondFactorError("That code is not right. Check the app's clock and enter the code it shows now.")
    factor.confirmed_at = timezone.now()
    factor.save(update_fields=["confirmed_at"])
    codes = _new_recovery_codes(factor)
    audit_record(
        verb="auth.second_factor_enrolled", actor=person, target=person, request=request, details={"kind": "totp"}
    )
    return codes


def second_factor_check(*, person: Person, code: str, request: HttpRequest | None = None) -> str:
    """Take a code from the app or a recovery code; returns which ("totp" or "recovery code")."""
    factor = confirmed_factor(person)
    if factor is None:
        raise SecondFactorError("No authenticator app is set up.")
    if _take_code(factor, code):
        return "totp"
    hashed = _hash(code)
    if len(_normalized(code)) == 16 and RecoveryCode.objects.filter(
        factor=factor, code_hash=hashed, used_at__isnull=True
    ).update(used_at=timezone.now()):
        left = RecoveryCode.objects.filter(factor=factor, used_at__isnull=True).count()
        audit_record(
            verb="auth.recovery_code_used", actor=person, target=person, request=request, details={"left": left}
        )
        return "recovery code"
    raise SecondFactorError("That code is not right.")


@transaction.atomic
def recovery_codes_regenerate(*, person: Person, code: str, request: HttpRequest | None = None) -> list[str]:
    """New recovery codes (the old ones stop working), after a current code from the app."""
    factor = confirmed_factor(person)
    if factor is None or not _take_code(factor, code):
        raise SecondFactorError("Enter the code your authenticator app shows now.")
    codes = _new_recovery_codes(factor)
    audit_record(verb="auth.recovery_codes_regenerated", actor=person, target=person, request=request)
    return codes


@transaction.atomic
def second_factor_remove(*, person: Person, code: str, required: bool, request: HttpRequest | None = None) -> None:
    """Remove the app, after a current code from it (or a recovery code); refused while it is required."""
    if required:
        raise SecondFactorError("A second factor is required for every local account here, so it cannot be removed.")
    second_factor_check(person=person, code=code, request=request)
    SecondFactor.objects.filter(person=person).delete()
    audit_record(verb="auth.second_factor_removed", actor=person, target=person, request=request)
