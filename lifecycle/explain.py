"""Why a person is in a group: the birthright mappings that granted it (``integrations.explain``)."""

from __future__ import annotations

from collections.abc import Sequence

from integrations.explain import Membership, Why
from lifecycle.models import BirthrightMapping, Grant
from lifecycle.scope import mapping_text
from provisioning.causes import lifecycle_url


def memberships_granted(person_id: int, memberships: Sequence[Membership]) -> dict[tuple[int, int], Why]:
    """Memberships automation added for the person (its grants), each with the mappings that
    grant it: two queries, whatever the number of memberships."""
    by_group: dict[int, list[Membership]] = {}
    for membership in memberships:
        by_group.setdefault(membership.group_id, []).append(membership)
    if not by_group:
        return {}
    grants = list(
        Grant.objects.filter(person_id=person_id, group_id__in=list(by_group)).only("group_id", "mapping_ids")
    )
    mapping_ids = {pk for grant in grants for pk in grant.mapping_ids}
    mappings = BirthrightMapping.objects.filter(pk__in=mapping_ids).select_related("team")
    described = {m.pk: (m.integration_id, mapping_text(m)) for m in mappings}
    found: dict[tuple[int, int], Why] = {}
    for grant in grants:
        known = [pk for pk in sorted(grant.mapping_ids) if pk in described]
        for membership in by_group[grant.group_id]:
            if not known:
                text = f"birthright: {membership.group_name}, granted by a mapping since removed"
                found[(membership.account.pk, grant.group_id)] = Why(text)
                continue
            sources = "; ".join(f"{described[pk][1]} → {membership.group_name} via mapping {pk}" for pk in known)
            url = f"{lifecycle_url(membership.account.integration_id)}#mapping-{known[0]}"
            found[(membership.account.pk, grant.group_id)] = Why(f"birthright: {sources}", url)
    return found
