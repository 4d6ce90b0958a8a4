"""Role changes made in the console move the person's version and leave an identity event."""

from __future__ import annotations

from collections.abc import Callable

from django.test import Client

from console.accounts.models import IdentityEvent, Person, Role


def test_ui_role_change_touches_updated_at_and_records_the_roles(
    admin_client: Client, make_person: Callable[..., Person]
) -> None:
    person = make_person("lena", roles=["viewer"])
    before = Person.objects.get(pk=person.pk).updated_at
    operator = Role.objects.get(name="operator")
    response = admin_client.post(f"/people/{person.pk}/roles/", {"roles": [operator.pk]})
    assert response.status_code == 302
    after = Person.objects.get(pk=person.pk)
    assert after.updated_at > before
    event = IdentityEvent.objects.get(person=person, kind="updated")
    assert event.changes == {"before": {"roles": ["viewer"]}, "after": {"roles": ["operator"]}}
    assert event.source == "local"
    page = admin_client.get(f"/people/{person.pk}/").content.decode()
    assert "Updated" in page


def test_saving_the_same_roles_writes_nothing(admin_client: Client, make_person: Callable[..., Person]) -> None:
    person = make_person("lena", roles=["viewer"])
    viewer = Role.objects.get(name="viewer")
    admin_client.post(f"/people/{person.pk}/roles/", {"roles": [viewer.pk]})
    assert not IdentityEvent.objects.filter(person=person).exists()
