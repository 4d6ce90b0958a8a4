"""How extraction goes fast: COPY on PostgreSQL storing what the ORM stores, one-statement updates, hashes,
and a sample of the resources checked for valid SCIM."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from django.db import connection

from console.core import bulk
from integrations.extraction import USER_FIELDS, content_hash, extraction_run_execute, target_user_fields
from integrations.models import ExtractionRun, Integration, TargetGroup, TargetMembership, TargetUser
from integrations.scim_client import SAMPLE_VALUES, ScimClient, resource_problem

pytestmark = pytest.mark.django_db

LIST = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
AWKWARD = 'tab\there, new\nline, back\\slash, "quoted", \\N, ünïcödé ✓'
WHEN = datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)


def user_rows(integration: Integration) -> list[list[Any]]:
    """Rows in insert_rows' shape, with values COPY's text format has to escape."""
    resources: list[dict[str, Any]] = [
        {"id": "1", "userName": AWKWARD, "emails": [{"value": "a@example.com", "primary": True}], "n": 1.5},
        {"id": "2", "userName": "plain", "nested": {"list": [None, True, 0, AWKWARD]}, "meta": {"version": 'W/"1"'}},
        {"id": "3", "userName": "", "empty": {}, "quote": '\\"'},
    ]
    return [
        [
            str(resource["userName"]),
            AWKWARD if number == 0 else "",
            "a@example.com" if number == 0 else "",
            "",
            number != 1,
            AWKWARD if number == 2 else "",  # department
            "Title" if number == 1 else "",
            resource,
            content_hash(resource),
            None if number else WHEN,
            integration.pk,
            str(resource["id"]),
            WHEN,
            WHEN,
        ]
        for number, resource in enumerate(resources)
    ]


USER_COLUMNS = [*USER_FIELDS, "integration_id", "remote_id", "first_seen_at", "last_seen_at"]
STORED = [name for name in USER_COLUMNS if name not in ("integration_id", "first_seen_at")]


def test_insert_rows_stores_exactly_what_the_orm_stores(make_integration: Callable[..., Integration]) -> None:
    """COPY on PostgreSQL, bulk_create elsewhere: either way, row for row what ``create`` stores."""
    assert bulk.copy_supported() is (connection.vendor == "postgresql")
    bulk_written = make_integration("https://a.example.com", name="Bulk")
    one_by_one = make_integration("https://b.example.com", name="ORM")
    inserted = bulk.insert_rows(TargetUser, USER_COLUMNS, user_rows(bulk_written), returning=True)
    for row in user_rows(one_by_one):
        TargetUser.objects.create(**dict(zip(USER_COLUMNS, row, strict=True)))

    def stored(integration: Integration) -> list[tuple[Any, ...]]:
        return list(TargetUser.objects.filter(integration=integration).order_by("remote_id").values_list(*STORED))

    assert stored(bulk_written) == stored(one_by_one)
    assert sorted(inserted) == sorted(TargetUser.objects.filter(integration=bulk_written).values_list("pk", flat=True))
    assert TargetUser.objects.get(integration=bulk_written, remote_id="1").resource["userName"] == AWKWARD
    # Keys drawn from the sequence: the ORM's next insert does not collide with them.
    later = TargetUser.objects.create(integration=bulk_written, remote_id="4", user_name="later", content_hash="x")
    assert later.pk > max(inserted)


def test_rows_without_keys_asked_for_store_exactly_what_the_orm_stores(
    make_integration: Callable[..., Integration],
) -> None:
    """COPY on PostgreSQL, one INSERT executed for every row elsewhere: row for row what ``create`` stores."""
    bulk_written = make_integration("https://a.example.com", name="Bulk")
    one_by_one = make_integration("https://b.example.com", name="ORM")
    assert bulk.insert_rows(TargetUser, USER_COLUMNS, user_rows(bulk_written)) == []
    for row in user_rows(one_by_one):
        TargetUser.objects.create(**dict(zip(USER_COLUMNS, row, strict=True)))

    def stored(integration: Integration) -> list[tuple[Any, ...]]:
        return list(TargetUser.objects.filter(integration=integration).order_by("remote_id").values_list(*STORED))

    assert stored(bulk_written) == stored(one_by_one)


def test_objects_created_together_get_their_keys_and_store_what_save_stores(
    make_integration: Callable[..., Integration],
) -> None:
    bulk_written = make_integration("https://a.example.com", name="Bulk")
    one_by_one = make_integration("https://b.example.com", name="ORM")

    def users(integration: Integration) -> list[TargetUser]:
        return [TargetUser(**dict(zip(USER_COLUMNS, row, strict=True))) for row in user_rows(integration)]

    made = users(bulk_written)
    bulk.create_objects(made)
    for user in users(one_by_one):
        user.save()

    assert all(user.pk is not None and not user._state.adding for user in made)
    assert {user.pk: user.remote_id for user in made} == dict(
        TargetUser.objects.filter(integration=bulk_written).values_list("pk", "remote_id")
    )
    columns = [name for name in STORED if name != "last_seen_at"]
    assert list(
        TargetUser.objects.filter(integration=bulk_written).order_by("remote_id").values_list(*columns)
    ) == list(TargetUser.objects.filter(integration=one_by_one).order_by("remote_id").values_list(*columns))


def test_objects_created_together_after_rows_were_deleted_get_the_keys_they_were_stored_under(
    make_integration: Callable[..., Integration],
) -> None:
    """SQLite hands the keys out one after the other inside the insert's transaction; the keys
    given back are the rows' own even when the newest rows were deleted before."""
    integration = make_integration("https://a.example.com")

    def users(prefix: str, count: int) -> list[TargetUser]:
        return [
            TargetUser(integration=integration, remote_id=f"{prefix}{i}", user_name=f"{prefix}{i}", content_hash="-")
            for i in range(count)
        ]

    first = users("a", 5)
    bulk.create_objects(first)
    TargetUser.objects.filter(pk__in=[user.pk for user in first[2:]]).delete()
    second = users("b", 7)
    bulk.create_objects(second)

    stored = dict(TargetUser.objects.filter(integration=integration).values_list("pk", "remote_id"))
    assert {user.pk: user.remote_id for user in first[:2] + second} == stored
    assert len(stored) == 9


def test_a_plain_value_goes_as_it_is_and_a_field_that_prepares_its_values_keeps_doing_so() -> None:
    def ready(model: Any, name: str, value: Any) -> Any:
        return bulk._preparer(model._meta.get_field(name))(value)

    assert ready(TargetUser, "user_name", "ada") == "ada"
    assert ready(TargetUser, "integration", 7) == 7  # a foreign key: its target's
    assert ready(TargetUser, "active", True) is True
    token = ready(Integration, "bearer_token", "s3cret-token")  # encrypted by its field
    assert token
    assert "s3cret-token" not in token


def test_rows_without_keys_asked_for_are_inserted_all_the_same(make_integration: Callable[..., Integration]) -> None:
    integration = make_integration("https://a.example.com")
    group = TargetGroup.objects.create(integration=integration, remote_id="g", display_name="G", content_hash="x")
    user = TargetUser.objects.create(integration=integration, remote_id="u", user_name="u", content_hash="x")
    rows = [(integration.pk, group.pk, "u", user.pk), (integration.pk, group.pk, AWKWARD, None)]
    fields = ["integration_id", "group_id", "member_remote_id", "user_id"]

    assert bulk.insert_rows(TargetMembership, fields, rows) == []

    assert set(TargetMembership.objects.values_list("member_remote_id", "user_id")) == {("u", user.pk), (AWKWARD, None)}


@pytest.mark.parametrize("changed", [1, 3])
def test_update_rows_rewrites_the_fields_and_counts_the_rows_it_found(
    changed: int, make_integration: Callable[..., Integration]
) -> None:
    integration = make_integration("https://a.example.com")
    users = [
        TargetUser.objects.create(integration=integration, remote_id=str(n), user_name=f"u{n}", content_hash="old")
        for n in range(changed)
    ]
    missing = max(user.pk for user in users) + 1000
    rows = [(user.pk, [f"new{user.pk}", {"id": user.remote_id, "x": AWKWARD}, "new"]) for user in users]

    found = bulk.update_rows(TargetUser, ["user_name", "resource", "content_hash"], [*rows, (missing, ["x", {}, "x"])])

    assert found == changed
    for user in users:
        user.refresh_from_db()
        assert (user.user_name, user.resource["x"], user.content_hash) == (f"new{user.pk}", AWKWARD, "new")
    assert bulk.update_rows(TargetUser, ["user_name"], []) == 0


def test_the_content_hash_is_the_sorted_json_of_all_but_meta() -> None:
    resource = {
        "id": "1",
        "userName": AWKWARD,
        "name": {"givenName": "Ada", "familyName": "Lovelace"},
        "emails": [{"value": "ada@example.com", "primary": True}, {"value": None}],
        "score": 1e-7,
        "big": 10**20,
        "meta": {"version": 'W/"2"'},
    }
    stable = {key: value for key, value in resource.items() if key != "meta"}
    expected = hashlib.sha256(json.dumps(stable, sort_keys=True, default=str).encode()).hexdigest()
    assert content_hash(resource) == expected
    assert content_hash({**resource, "meta": {"version": 'W/"3"'}}) == expected
    assert content_hash({**resource, "score": 2}) != expected


def test_a_large_group_is_checked_by_a_sample_of_its_members() -> None:
    members = [{"value": str(n), "type": "User"} for n in range(50_000)]
    assert resource_problem("Group", {"id": "g", "displayName": "All", "members": members}) == ""
    broken = [{"value": "1", "type": "User"}, {"value": 7, "type": "User"}, *members]
    assert "members.1.value" in resource_problem("Group", {"id": "g", "displayName": "All", "members": broken})
    assert SAMPLE_VALUES >= 100


def test_the_first_pages_and_then_every_25th_are_checked_for_valid_scim(
    make_integration: Callable[..., Integration], monkeypatch: pytest.MonkeyPatch
) -> None:
    from integrations.extraction import flow

    integration = make_integration("https://scim.example.com/v2", discover_extensions=False, page_size=1)
    users: list[dict[str, Any]] = [{"id": str(n), "userName": f"user{n}"} for n in range(1, 61)]
    users[49]["userName"] = 42  # on page 50; page 30 is not checked, page 25 is
    checked: list[str] = []

    def check(kind: str, resource: dict[str, Any]) -> str:
        checked.append(str(resource["id"]))
        return resource_problem(kind, resource)

    def handler(request: httpx.Request) -> httpx.Response:
        start = int(request.url.params["startIndex"])
        chosen = users[start - 1 : start] if "Users" in request.url.path else []
        body = {"schemas": [LIST], "totalResults": len(users) if chosen else 0, "Resources": chosen}
        return httpx.Response(200, json=body)

    monkeypatch.setattr(flow, "resource_problem", check)
    client = ScimClient(integration, http=httpx.Client(transport=httpx.MockTransport(handler)))
    run = extraction_run_execute(
        run_id=ExtractionRun.objects.create(integration=integration, trigger="manual").pk, client=client
    )

    assert run is not None
    assert (run.status, run.users_seen) == ("succeeded", 60)
    assert checked == [str(n) for n in (*range(1, 6), 25, 50)]  # no more once a warning is there
    [warning] = run.warnings
    assert warning == "some users are not valid SCIM (kept as sent): User 50: userName: Input should be a valid string"


def test_target_user_fields_come_in_the_order_extraction_writes_them() -> None:
    resource = {"id": "7", "userName": "ada", "emails": [{"value": "ada@example.com", "primary": True}]}
    fields = target_user_fields(resource, "digest")
    assert list(fields) == USER_FIELDS
    assert (fields["user_name"], fields["email"], fields["active"], fields["removed_at"]) == (
        "ada",
        "ada@example.com",
        True,
        None,
    )


def test_update_rows_stores_exactly_what_the_orm_stores(make_integration: Callable[..., Integration]) -> None:
    """Every kind of column (text, boolean, JSON, a null or aware datetime), as ``save`` would store it."""
    bulk_written = make_integration("https://a.example.com", name="Bulk")
    one_by_one = make_integration("https://b.example.com", name="ORM")
    wanted = [dict(zip(USER_COLUMNS, row, strict=True)) for row in user_rows(one_by_one)]
    for fields in wanted:
        TargetUser.objects.create(**fields)
    placeholders = [
        TargetUser.objects.create(
            integration=bulk_written,
            remote_id=fields["remote_id"],
            user_name="old",
            content_hash="old",
            last_seen_at=WHEN,
        )
        for fields in wanted
    ]

    found = bulk.update_rows(
        TargetUser,
        USER_FIELDS,
        [(user.pk, [fields[name] for name in USER_FIELDS]) for user, fields in zip(placeholders, wanted, strict=True)],
    )

    def stored(integration: Integration) -> list[tuple[Any, ...]]:
        return list(TargetUser.objects.filter(integration=integration).order_by("remote_id").values_list(*STORED))

    assert found == len(wanted)
    assert stored(bulk_written) == stored(one_by_one)


def test_update_rows_finds_rows_by_another_key_within_a_scope(make_integration: Callable[..., Integration]) -> None:
    mine, other = (
        make_integration("https://a.example.com", name="A"),
        make_integration("https://b.example.com", name="B"),
    )
    for integration in (mine, other):
        for remote_id in ("1", "2"):
            TargetUser.objects.create(integration=integration, remote_id=remote_id, user_name="old", content_hash="x")

    found = bulk.update_rows(
        TargetUser,
        ["user_name"],
        [("1", ["one"]), ("2", ["two"]), ("3", ["nobody"])],
        key="remote_id",
        scope={"integration_id": mine.pk},
    )

    assert found == 2
    assert dict(TargetUser.objects.filter(integration=mine).values_list("remote_id", "user_name")) == {
        "1": "one",
        "2": "two",
    }
    assert set(TargetUser.objects.filter(integration=other).values_list("user_name", flat=True)) == {"old"}


def test_upsert_objects_inserts_new_rows_updates_known_ones_and_returns_every_key(
    make_integration: Callable[..., Integration],
) -> None:
    app = make_integration("https://up.example.com", name="Upsert")
    known = TargetUser.objects.create(
        integration=app, remote_id="k", user_name="old", content_hash="-", resource={"old": True}
    )
    first_seen = known.first_seen_at
    rows = [
        TargetUser(integration=app, remote_id="k", user_name=AWKWARD, content_hash="h1", resource={"v": AWKWARD}),
        TargetUser(integration=app, remote_id="n", user_name="new", content_hash="h2", active=False, removed_at=WHEN),
    ]

    bulk.upsert_objects(rows, unique_fields=["integration", "remote_id"], update_fields=[*USER_FIELDS, "last_seen_at"])

    assert rows[0].pk == known.pk  # the row it had
    stored = {user.remote_id: user for user in TargetUser.objects.filter(integration=app)}
    assert set(stored) == {"k", "n"}
    assert rows[1].pk == stored["n"].pk
    assert (stored["k"].user_name, stored["k"].content_hash, stored["k"].resource) == (AWKWARD, "h1", {"v": AWKWARD})
    assert stored["k"].first_seen_at == first_seen  # not among the fields updated
    assert (stored["n"].active, stored["n"].removed_at, stored["n"].display_name) == (False, WHEN, "")
    assert stored["n"].first_seen_at is not None  # what saving fills in, filled in


def test_update_rows_returning_writes_only_rows_in_scope_and_says_which(
    make_integration: Callable[..., Integration],
) -> None:
    app = make_integration("https://ret.example.com", name="Returning")
    users = [
        TargetUser.objects.create(integration=app, remote_id=str(n), user_name=f"u{n}", content_hash="-", active=n != 1)
        for n in range(3)
    ]
    written = bulk.update_rows_returning(
        TargetUser,
        ["user_name", "resource"],
        [(user.pk, [f"new{user.remote_id}", {"n": user.remote_id}]) for user in users],
        scope={"active": True},
    )
    assert written == {users[0].pk, users[2].pk}
    stored = dict(TargetUser.objects.filter(integration=app).values_list("remote_id", "user_name"))
    assert stored == {"0": "new0", "1": "u1", "2": "new2"}  # the one out of scope is untouched


def test_copy_encodes_django_s_own_fields_as_text_and_leaves_a_field_that_prepares_its_values_to_it(
    make_integration: Callable[..., Integration],
) -> None:
    from integrations.models import ResourceField

    def field(model: Any, name: str) -> Any:
        return model._meta.get_field(name)

    encoder = bulk._column_encoder
    assert encoder(field(TargetUser, "user_name")) is bulk._encode_texts
    assert encoder(field(TargetUser, "active")) is bulk._encode_booleans
    assert encoder(field(TargetUser, "integration")) is bulk._encode_integers  # a foreign key: its target's
    assert encoder(field(TargetUser, "first_seen_at")) is bulk._encode_datetimes
    assert isinstance(field(TargetUser, "resource"), ResourceField)
    assert encoder(field(TargetUser, "resource")) is bulk._encode_json
    assert encoder(field(Integration, "bearer_token")) is None  # encrypted by its field: not as text

    # Inserted in bulk, an encrypted field is stored encrypted, as the ORM stores it.
    template = make_integration("https://t.example.com", name="Template", bearer_token="s3cret-token")
    unsaved = Integration(name="Bulk", base_url="https://bulk.example.com", bearer_token="s3cret-token")
    fields = [f for f in Integration._meta.concrete_fields if not f.primary_key]
    bulk.insert_rows(Integration, [f.attname for f in fields], [[f.pre_save(unsaved, add=True) for f in fields]])
    with connection.cursor() as cursor:
        cursor.execute("SELECT bearer_token FROM integrations_integration WHERE name = %s", ["Bulk"])
        (raw,) = cursor.fetchone()
    assert raw
    assert "s3cret-token" not in raw
    assert Integration.objects.get(name="Bulk").bearer_token == template.bearer_token == "s3cret-token"


def test_blocks_are_inserted_with_the_lead_each_is_given(make_integration: Callable[..., Integration]) -> None:
    """A group's members encoded before the group's key is drawn: each block gets its own key, a block
    without one is left out, an empty block writes nothing, and values COPY has to escape survive."""
    integration = make_integration("https://a.example.com")
    first, second, third = (
        TargetGroup.objects.create(integration=integration, remote_id=name, display_name=name, content_hash="x")
        for name in ("first", "second", "third")
    )
    user = TargetUser.objects.create(integration=integration, remote_id="u", user_name="u", content_hash="x")
    blocks: list[list[tuple[Any, ...]]] = [
        [(integration.pk, "u", user.pk), (integration.pk, AWKWARD, None)],
        [],
        [(integration.pk, "left out", None)],
        [(integration.pk, "u", user.pk)],
    ]
    fields = ["integration_id", "member_remote_id", "user_id"]
    encoded = bulk.encode_blocks(TargetMembership, "group_id", fields, blocks)
    assert (encoded.texts is not None) is bulk.copy_supported()

    bulk.insert_blocks(encoded, [first.pk, second.pk, None, third.pk])

    stored = set(TargetMembership.objects.values_list("group_id", "member_remote_id", "user_id", "integration_id"))
    assert stored == {
        (first.pk, "u", user.pk, integration.pk),
        (first.pk, AWKWARD, None, integration.pk),
        (third.pk, "u", user.pk, integration.pk),
    }
    with pytest.raises(ValueError, match="3 lead values for 4 blocks"):
        bulk.insert_blocks(encoded, [first.pk, second.pk, third.pk])


def test_rows_encoded_ahead_are_inserted_as_insert_rows_inserts_them(
    make_integration: Callable[..., Integration],
) -> None:
    """Encoding on one thread and inserting on another: the same rows and keys as ``insert_rows``."""
    ahead, direct = make_integration("https://a.example.com", name="A"), make_integration("https://b.example.com")
    encoded = bulk.encode_rows(TargetUser, USER_COLUMNS, user_rows(ahead))
    assert (encoded.text is not None) is bulk.copy_supported()
    keys = bulk.insert_encoded(encoded, returning=True)
    bulk.insert_rows(TargetUser, USER_COLUMNS, user_rows(direct))

    def stored(integration: Integration) -> list[tuple[Any, ...]]:
        return list(TargetUser.objects.filter(integration=integration).order_by("remote_id").values_list(*STORED))

    assert stored(ahead) == stored(direct)
    assert dict(TargetUser.objects.filter(integration=ahead).values_list("remote_id", "pk")) == dict(
        zip(["1", "2", "3"], keys, strict=True)
    )
