"""SCIM filters become database queries; paging is exact and clamped."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import pytest

from console.scim.errors import ScimError
from console.scim.filters import scim_filter_to_q
from tests.scim.conftest import ScimClient

ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"


@pytest.fixture
def staff(make_user: Callable[..., Any]) -> dict[str, dict[str, Any]]:
    return {
        "ada": make_user(
            "Ada@Example.com",
            externalId="00u1",
            title="Engineer",
            emails=[{"value": "ada@work.example", "type": "work"}, {"value": "ada@home.example", "type": "home"}],
            **{ENTERPRISE: {"department": "Research", "employeeNumber": "701", "costCenter": "R1"}},
        ),
        "bob": make_user(
            "bob@example.com",
            externalId="00u2",
            name={"givenName": "Bob", "familyName": "Babbage"},
            emails=[{"value": "bob@work.example", "type": "work"}],
            **{ENTERPRISE: {"department": "Sales", "employeeNumber": "702"}},
        ),
        "cyd": make_user(
            "cyd@other.org",
            active=False,
            emails=[{"value": "cyd@home.example", "type": "home"}],
            **{ENTERPRISE: {"department": "Research", "division": "Labs"}},
        ),
    }


def names(scim: ScimClient, text: str) -> list[str]:
    response = scim.get(f"Users?filter={quote(text)}")
    assert response.status_code == 200, response.content
    assert response.json_body["totalResults"] == len(response.json_body["Resources"])
    return sorted(r["userName"] for r in response.json_body["Resources"] if r["userName"] != "okta-provisioner")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('userName eq "ada@example.com"', ["Ada@Example.com"]),
        ('USERNAME EQ "ADA@EXAMPLE.COM"', ["Ada@Example.com"]),
        ('userName ne "ada@example.com"', ["bob@example.com", "cyd@other.org", "root-admin"]),
        ('userName co "example"', ["Ada@Example.com", "bob@example.com"]),
        ('userName sw "BO"', ["bob@example.com"]),
        ('userName ew ".org"', ["cyd@other.org"]),
        ('externalId eq "00u2"', ["bob@example.com"]),
        ("externalId pr", ["Ada@Example.com", "bob@example.com"]),
        ('emails.value eq "ada@home.example"', ["Ada@Example.com"]),
        ('emails[type eq "work"]', ["Ada@Example.com", "bob@example.com"]),
        ('emails[type eq "work" and value co "bob"]', ["bob@example.com"]),
        ("active eq false", ["cyd@other.org"]),
        ('name.familyName eq "Babbage"', ["bob@example.com"]),
        ('name.givenName sw "A"', ["Ada@Example.com", "cyd@other.org"]),
        (f'{ENTERPRISE}:department eq "Research"', ["Ada@Example.com", "cyd@other.org"]),
        ('department eq "Research" and not (division eq "Labs")', ["Ada@Example.com"]),
        ('employeeNumber gt "701"', ["bob@example.com"]),
        ('employeeNumber ge "701"', ["Ada@Example.com", "bob@example.com"]),
        ('employeeNumber lt "702"', ["Ada@Example.com"]),
        ('employeeNumber le "702"', ["Ada@Example.com", "bob@example.com"]),
        ('costCenter eq "R1" or userName sw "cyd"', ["Ada@Example.com", "cyd@other.org"]),
        ('(userName sw "a" or userName sw "b") and active eq true', ["Ada@Example.com", "bob@example.com"]),
        ('meta.lastModified gt "2000-01-01T00:00:00Z" and userName sw "b"', ["bob@example.com"]),
        ('meta.lastModified lt "2000-01-01T00:00:00Z"', []),
    ],
)
def test_user_filters(scim: ScimClient, staff: dict[str, Any], text: str, expected: list[str]) -> None:
    assert names(scim, text) == expected


def test_members_value_filters_groups(scim: ScimClient, staff: dict[str, Any]) -> None:
    ada = staff["ada"]["id"]
    scim.post("Groups", {"displayName": "With Ada", "members": [{"value": ada}]})
    scim.post("Groups", {"displayName": "Without"})
    response = scim.get(f"Groups?filter={quote(f'members.value eq "{ada}"')}")
    assert [g["displayName"] for g in response.json_body["Resources"]] == ["With Ada"]
    by_name = scim.get(f"Groups?filter={quote('displayName eq "with ada"')}")
    assert by_name.json_body["totalResults"] == 1


@pytest.mark.parametrize(
    "text",
    [
        'nosuch eq "x"',
        'userName eq "unterminated',
        'userName xx "a"',
        'userName eq "a" and',
        '(userName eq "a"',
        "userName eq",
        'emails[type eq "work"',
        'urn:example:unknown:department eq "x"',
        'password eq "secret"',
    ],
)
def test_unknown_attributes_and_malformed_filters_are_400_invalid_filter(
    scim: ScimClient, staff: dict[str, Any], text: str
) -> None:
    response = scim.get(f"Users?filter={quote(text)}")
    assert response.status_code == 400
    assert response.json_body["scimType"] == "invalidFilter"


def test_filters_compile_to_queries_not_python() -> None:
    q = scim_filter_to_q('userName eq "a" or emails[type eq "work"]', resource="User")
    assert "username" in str(q)
    with pytest.raises(ScimError):
        scim_filter_to_q("displayName eq 1 or", resource="Group")


def test_paging_is_exact_and_clamped_at_200(scim: ScimClient, make_person: Callable[..., Any]) -> None:
    for i in range(205):
        make_person(f"p{i:03}", roles=(), password=None)
    page = scim.get("Users?count=1000").json_body
    assert page["itemsPerPage"] == 200
    assert page["totalResults"] == 207  # 205, the provisioner and the admin
    last = scim.get("Users?startIndex=201&count=50").json_body
    assert last["startIndex"] == 201
    assert last["itemsPerPage"] == 7
    filtered = scim.get(f"Users?filter={quote('userName sw "p1"')}&count=10&startIndex=95").json_body
    assert filtered["totalResults"] == 100
    assert len(filtered["Resources"]) == 6
    assert scim.get("Users?count=0").json_body["Resources"] == []
    config = scim.get("ServiceProviderConfig").json_body
    assert config["filter"] == {"supported": True, "maxResults": 200}


def test_list_queries_do_not_grow_with_the_page(
    scim: ScimClient, make_person: Callable[..., Any], django_assert_max_num_queries: Any
) -> None:
    for i in range(60):
        make_person(f"q{i:03}", roles=("viewer",), password=None)
    with django_assert_max_num_queries(20):
        assert len(scim.get("Users?count=60").json_body["Resources"]) == 60


@pytest.mark.parametrize(
    "text",
    [
        'userName eq "jos\\u00e9"',  # a JSON escape, as RFC 7644 filters carry strings
        'userName eq "josé"',  # the character itself
        'userName eq "JOS\\u00e9"',  # ASCII letters still compare case-insensitively
        # quotes, a backslash and a surrogate pair
        'displayName eq "Jos\\u00e9 \\"Pepe\\" M\\u00fcller \\\\ \\ud83d\\ude00"',
        # characters written as themselves next to escapes
        'displayName eq "José \\"Pepe\\" Müller \\\\ 😀"',
    ],
)
def test_string_escapes_and_non_ascii_values_match_exactly(
    scim: ScimClient, make_user: Callable[..., Any], text: str
) -> None:
    josé = make_user("josé", displayName='José "Pepe" Müller \\ 😀')
    make_user("jose")
    found = scim.get(f"Users?filter={quote(text)}").json_body
    assert found["totalResults"] == 1, found
    assert found["Resources"][0]["id"] == josé["id"]


def test_escapes_in_a_member_value_filter_and_bad_escapes(scim: ScimClient, make_user: Callable[..., Any]) -> None:
    user = make_user()
    group = scim.post("Groups", {"displayName": "Ünits", "members": [{"value": user["id"]}]}).json_body
    escaped_id = "".join(f"\\u{ord(c):04x}" for c in user["id"])
    removed = scim.patch(
        f"Groups/{group['id']}",
        {
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "remove", "path": f'members[value eq "{escaped_id}"]'}],
        },
    )
    assert removed.status_code == 204
    assert scim.get(f"Groups/{group['id']}").json_body["members"] == []
    assert scim.get(f"Groups?filter={quote('displayName eq "\\u00dcnits"')}").json_body["totalResults"] == 1
    bad = scim.get(f"Users?filter={quote('userName eq "bad\\x41"')}")
    assert bad.status_code == 400
    assert bad.json_body["scimType"] == "invalidFilter"


@pytest.mark.parametrize(
    ("resource", "text"),
    [
        ("Users", 'phoneNumbers.value eq "x"'),
        ("Users", 'addresses.locality eq "x"'),
        ("Users", 'groups.value eq "x"'),
        ("Users", 'x509Certificates.value eq "x"'),
        ("Users", 'meta.version eq "x"'),
        ("Users", 'urn:ietf:params:scim:schemas:core:2.0:Group:displayName eq "x"'),
        ("Users", 'members.value eq "x"'),
        ("Groups", 'nickName eq "x"'),
        ("Groups", 'userName eq "x"'),
        ("Groups", 'urn:ietf:params:scim:schemas:core:2.0:User:displayName eq "x"'),
        ("Groups", 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department eq "x"'),
    ],
)
def test_a_filter_on_an_attribute_the_server_does_not_keep_is_400_not_an_empty_list(
    scim: ScimClient, resource: str, text: str
) -> None:
    response = scim.get(f"{resource}?filter={quote(text)}")
    assert (response.status_code, response.json_body["scimType"]) == (400, "invalidFilter")


def test_nick_name_is_kept_so_a_filter_on_it_finds_who_has_it(scim: ScimClient, make_user: Callable[..., Any]) -> None:
    make_user("ada@example.com", nickName="x")
    make_user("bob@example.com")
    assert names(scim, 'nickName eq "x"') == ["ada@example.com"]
    assert names(scim, 'urn:ietf:params:scim:schemas:core:2.0:User:nickName eq "X"') == ["ada@example.com"]
    assert names(scim, 'nickName eq "nobody"') == []
