"""Why a person has an account, and each of its group memberships: one line per row of the
person's accounts panel.

The answers live in apps above integrations (provisioning knows the actions and access
requests, lifecycle the birthright grants), and integrations imports neither. So they
register *explainers* here in their ``AppConfig.ready``; the panel asks each once per page,
with every account (or membership) of the person at once, so an explainer answers in one
query whatever the number of rows. The first explainer (by ``order``) to answer a row wins;
a row nobody explains gets the integrations' own words (how the account was linked, or a
membership the application holds that no mapping or request granted).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from integrations.models import OwnerSource, TargetUser


@dataclass(frozen=True)
class Why:
    """One line: why, in words, and where to read more (optional)."""

    text: str
    url: str = ""


@dataclass(frozen=True)
class Membership:
    """An account's membership in one of its integration's groups."""

    account: TargetUser
    group_id: int
    group_name: str


AccountExplainer = Callable[[int, Sequence[TargetUser]], dict[int, Why]]  # person, accounts -> account pk -> why
MembershipExplainer = Callable[[int, Sequence[Membership]], dict[tuple[int, int], Why]]  # -> (account, group) -> why

_accounts: list[tuple[int, AccountExplainer]] = []
_memberships: list[tuple[int, MembershipExplainer]] = []

NO_GRANT = Why("membership in the application, granted by no mapping or request")


def register_account_explainer(explainer: AccountExplainer, *, order: int = 100) -> None:
    if all(existing is not explainer for _, existing in _accounts):
        _accounts.append((order, explainer))
        _accounts.sort(key=lambda item: item[0])


def register_membership_explainer(explainer: MembershipExplainer, *, order: int = 100) -> None:
    if all(existing is not explainer for _, existing in _memberships):
        _memberships.append((order, explainer))
        _memberships.sort(key=lambda item: item[0])


def _linked(account: TargetUser) -> Why:
    source = account.owner_source
    if source == OwnerSource.MANUAL:
        return Why("linked by an admin")
    if source in (OwnerSource.USER_NAME, OwnerSource.EMAIL, OwnerSource.EXTERNAL_ID):
        return Why(f"linked by the rule {source}: {account.get_owner_source_display()}")
    if source == OwnerSource.ACTION:
        return Why("linked by an action of the console, which made or found it for them")
    return Why("linked, by a rule no longer known")


def accounts_explained(person_id: int, accounts: Sequence[TargetUser]) -> dict[int, Why]:
    """Each account's one line (every account has one)."""
    found: dict[int, Why] = {}
    for _, explainer in _accounts:
        missing = [a for a in accounts if a.pk not in found]
        if not missing:
            break
        for pk, why in explainer(person_id, missing).items():
            found.setdefault(pk, why)
    return {a.pk: found.get(a.pk) or _linked(a) for a in accounts}


def memberships_explained(person_id: int, memberships: Sequence[Membership]) -> dict[tuple[int, int], Why]:
    """Each membership's one line (every membership has one)."""
    found: dict[tuple[int, int], Why] = {}
    for _, explainer in _memberships:
        missing = [m for m in memberships if (m.account.pk, m.group_id) not in found]
        if not missing:
            break
        for key, why in explainer(person_id, missing).items():
            found.setdefault(key, why)
    return {(m.account.pk, m.group_id): found.get((m.account.pk, m.group_id), NO_GRANT) for m in memberships}


def person_accounts_explained(person_id: int, accounts: list[Any]) -> None:
    """Set ``why`` on each account of ``integrations.selectors.person_accounts`` and
    ``group_rows`` (name, why) for its groups."""
    memberships = [
        Membership(account, group_id, name) for account in accounts for group_id, name in account.group_pairs
    ]
    account_whys = accounts_explained(person_id, accounts)
    membership_whys = memberships_explained(person_id, memberships)
    for account in accounts:
        account.why = account_whys[account.pk]
        account.group_rows = [(name, membership_whys[(account.pk, group_id)]) for group_id, name in account.group_pairs]
