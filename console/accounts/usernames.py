"""How sign-in matches a user name: NFKC, then case-folded (one rule for the look-up and the throttle)."""

from __future__ import annotations

import unicodedata

from django.db.models import Q

from console.accounts.models import Person


def username_key(value: str) -> str:
    """``value`` as sign-in compares it: Unicode's NFKC_Casefold, near enough.

    Fullwidth letters, the Kelvin sign, the long s and case all fold away (fullwidth "admin",
    "ADMIN" and "admin" are one name), while a dotless i (U+0131) or a dotted capital I (U+0130)
    stay letters of their own.
    """
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", value).casefold())


def person_for_sign_in(username: str) -> Person | None:
    """The person ``username`` names by :func:`username_key`, or ``None``.

    The database narrows by ``iexact`` (indexed) on the name as typed and as folded; only a
    candidate whose own name folds to the same key is taken. The database's case rules
    differ from Unicode's (PostgreSQL's upper() makes "adm\u0131n" ADMIN), and that difference
    must never let a name sign in under a key the throttle does not count.
    """
    key = username_key(username)
    narrowed = Q(username__iexact=username)
    if key != username:
        narrowed |= Q(username__iexact=key)
    matching = [person for person in Person.objects.filter(narrowed) if username_key(person.username) == key]
    # Two people whose names fold alike share a throttle; the one spelled as typed comes first.
    matching.sort(key=lambda person: (person.username != username, person.username.lower() != username.lower()))
    return matching[0] if matching else None
