"""Migrate one server's database and load it: ``python -m bench.scim_server.seed SYSTEM``.

Run with that server's ``DJANGO_SETTINGS_MODULE`` and ``DATABASE_URL``. Each system is
loaded through its own models, in bulk: ``--people`` people named ``user000000`` on, and
one group for each size in ``--groups`` holding the first N of them. Prints, as JSON, what
the load generator needs: a bearer token, user ids and names to ask for, the groups' ids,
and spare user ids (in no group) for the add-member requests.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Iterator
from typing import Any

import django

BATCH = 5_000
SPARES = 400


def username(index: int) -> str:
    return f"user{index:06d}"


def batches(total: int) -> Iterator[range]:
    for start in range(0, total, BATCH):
        yield range(start, min(start + BATCH, total))


def seed_console(people: int, groups: list[int], token_owner: str) -> dict[str, Any]:
    from console.accounts.models import Person, PersonEmail, Role, Source, Team, TeamMembership
    from console.accounts.services import api_key_create
    from console.core.models import ConsoleSettings

    for chunk in batches(people):
        created = Person.objects.bulk_create(
            Person(
                username=username(i),
                given_name="Given",
                family_name=f"Family{i}",
                display_name=f"Given Family{i}",
                email=f"{username(i)}@example.com",
                emails=[{"value": f"{username(i)}@example.com", "type": "work", "primary": True}],
                source=Source.SCIM,
                password="!",  # noqa: S106 - an unusable password: these people sign in through the IdP
            )
            for i in chunk
        )
        PersonEmail.objects.bulk_create(
            PersonEmail(person=person, value=person.email, type="work", primary=True) for person in created
        )
    pairs = list(Person.objects.order_by("pk").values_list("pk", "scim_id")[:people])
    group_ids = {}
    for size in groups:
        team = Team.objects.create(name=f"bench-{size}", source=Source.SCIM)
        for chunk in batches(size):
            TeamMembership.objects.bulk_create(TeamMembership(team=team, person_id=pairs[i][0]) for i in chunk)
        group_ids[size] = str(team.scim_id)  # the ids SCIM answers with (the integer keys work too)
    owner = Person.objects.create(username=token_owner, source=Source.LOCAL, password="!")  # noqa: S106
    owner.roles.add(Role.objects.get(name="scim_provisioner"))
    settings = ConsoleSettings.load()
    settings.scim_provisioning_enabled = True
    settings.save()
    key = api_key_create(actor=owner, owner=owner, name="bench")
    return {"token": key.token, "ids": [str(scim_id) for _, scim_id in pairs], "groups": group_ids}


def seed_django_scim2(people: int, groups: list[int], token_owner: str) -> dict[str, Any]:
    from django.db.models import CharField
    from django.db.models.functions import Cast

    from bench.scim_server.peer_django_scim2 import models

    BenchUser: Any = models.BenchUser  # the peer's models; the type checker reads the console's settings
    BenchGroup: Any = models.BenchGroup

    for chunk in batches(people):
        BenchUser.objects.bulk_create(
            BenchUser(
                username=username(i),
                scim_username=username(i),
                first_name="Given",
                last_name=f"Family{i}",
                email=f"{username(i)}@example.com",
                password="!",  # noqa: S106
            )
            for i in chunk
        )
    BenchUser.objects.update(scim_id=Cast("id", CharField()))
    ids = list(BenchUser.objects.order_by("pk").values_list("pk", flat=True)[:people])
    membership = BenchUser.groups.through
    group_ids = {}
    for size in groups:
        group = BenchGroup.objects.create(name=f"bench-{size}")  # save() sets its scim_id
        for chunk in batches(size):
            membership.objects.bulk_create(membership(benchuser_id=ids[i], group_id=group.pk) for i in chunk)
        group_ids[size] = str(group.pk)
    BenchUser.objects.create_superuser(username=token_owner, password=None)
    return {"ids": [str(pk) for pk in ids], "groups": group_ids}


def seed_django_scim2_server(people: int, groups: list[int], token_owner: str) -> dict[str, Any]:
    from django.contrib.auth import models as auth_models
    from django_scim2_server import models

    User: Any = auth_models.User  # the peer's models; the type checker reads the console's settings
    Group: Any = auth_models.Group
    SCIMUser: Any = models.SCIMUser
    SCIMGroup: Any = models.SCIMGroup

    for chunk in batches(people):
        users = User.objects.bulk_create(
            User(
                username=username(i),
                first_name="Given",
                last_name=f"Family{i}",
                email=f"{username(i)}@example.com",
                password="!",  # noqa: S106
            )
            for i in chunk
        )
        SCIMUser.objects.bulk_create(SCIMUser(user=user, scim_username=user.username) for user in users)
    pairs = list(SCIMUser.objects.order_by("user_id").values_list("user_id", "id")[:people])
    membership = User.groups.through
    group_ids = {}
    for size in groups:
        group = Group.objects.create(name=f"bench-{size}")
        scim_group = SCIMGroup.objects.create(group=group, display_name=group.name)
        for chunk in batches(size):
            membership.objects.bulk_create(membership(user_id=pairs[i][0], group_id=group.pk) for i in chunk)
        group_ids[size] = str(scim_group.pk)
    User.objects.create_superuser(username=token_owner, password=None)
    return {"ids": [str(scim_id) for _, scim_id in pairs], "groups": group_ids}


SEEDERS = {
    "console": seed_console,
    "django-scim2": seed_django_scim2,
    "django-scim2-server": seed_django_scim2_server,
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("system", choices=sorted(SEEDERS))
    parser.add_argument("--people", type=int, required=True)
    parser.add_argument("--groups", default="10,1000,50000")
    args = parser.parse_args()
    groups = [int(size) for size in args.groups.split(",") if size]
    if max(groups, default=0) + SPARES > args.people:
        parser.error("--people must exceed the largest group by the spare users the requests add")
    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)
    if args.system == "console":
        call_command("createcachetable", verbosity=0)
    loaded = SEEDERS[args.system](args.people, groups, "bench-admin")
    from django.db import connection

    if connection.vendor == "postgresql":  # as autovacuum would have, on a database in use
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    ids = loaded["ids"]
    result = {
        "token": loaded.get("token") or os.environ.get("BENCH_PEER_TOKEN", ""),
        "people": args.people,
        "user_ids": ids[-SPARES * 2 : -SPARES],  # for PATCH active: in no group
        "spare_ids": ids[-SPARES:],  # for the add-member requests: in no group
        "usernames": [username(i) for i in range(0, args.people, max(1, args.people // 500))],
        "groups": {str(size): group_id for size, group_id in loaded["groups"].items()},
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
