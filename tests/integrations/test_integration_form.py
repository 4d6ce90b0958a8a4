"""The integration form reads in sections, refuses impossible values with the reason (and the
API refuses the same), tests a connection before saving, and sums up its errors at the top."""

from __future__ import annotations

import re
from collections.abc import Callable
from html.parser import HTMLParser
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from console.accounts.models import Person
from integrations.limits import LIMITS
from integrations.models import Integration
from tests.integrations.conftest import INTEGRATION_FORM, PEER_TOKEN, Peer

pytestmark = pytest.mark.django_db


ZEROS = ("page_size", "rate_limit_per_second", "max_concurrency", "timeout_seconds", "rate_limit_burst")


class _Ids(HTMLParser):
    """Every id in a page, and every aria-describedby reference."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()
        self.described_by: list[tuple[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if found.get("id"):
            self.ids.add(str(found["id"]))
        for ref in (found.get("aria-describedby") or "").split():
            self.described_by.append((str(found.get("name") or found.get("id") or tag), ref))


def dangling_descriptions(html: str) -> list[tuple[str, str]]:
    parser = _Ids()
    parser.feed(html)
    return [(element, ref) for element, ref in parser.described_by if ref not in parser.ids]


def test_the_form_groups_its_fields_in_sections(admin_client: Client) -> None:
    page = admin_client.get("/integrations/new/?scratch=1").content.decode()
    sections = re.findall(r'<fieldset id="section-[^"]+"[^>]*>\s*<legend>([^<]+)</legend>', page)
    assert sections == ["Connection", "Authentication", "Provisioning", "Limits"]
    auth = page.split('<fieldset id="section-authentication"')[1].split("</fieldset>")[0]
    assert 'data-auth="bearer"' in auth
    assert auth.count('data-auth="basic"') == 2
    limits = page.split('<fieldset id="section-limits"')[1].split("</fieldset>")[0]
    assert 'name="page_size"' in limits
    assert 'name="rate_limit_per_second"' in limits
    assert "Leave empty to keep" not in page  # nothing is stored yet


def test_a_set_of_boxes_is_one_fieldset_named_by_its_legend(admin_client: Client) -> None:
    page = admin_client.get("/integrations/new/?scratch=1").content.decode()
    assert '<label for="">' not in page  # a label for nothing names no field
    rules = page.split('<fieldset class="field choices"')[1].split("</fieldset>")[0]
    assert "<legend>Tie accounts to people when</legend>" in rules
    assert rules.count('type="checkbox" name="correlation_rules"') == 3
    assert 'id="id_correlation_rules_helptext"' in rules


def test_leave_empty_to_keep_shows_only_where_a_secret_is_stored(admin_client: Client) -> None:
    app = Integration.objects.create(name="A", base_url="https://a.example.com/scim", bearer_token="t")
    page = admin_client.get(f"/integrations/{app.pk}/edit/").content.decode()
    token_help = re.search(r'id="id_bearer_token_helptext">([^<]+)<', page)
    password_help = re.search(r'id="id_basic_password_helptext">([^<]+)<', page)
    assert token_help
    assert "Leave empty to keep it" in token_help.group(1)
    assert password_help
    assert "Leave empty" not in password_help.group(1)


@pytest.mark.parametrize("name", [*ZEROS, "membership_chunk_size"])
def test_a_zero_is_refused_with_its_reason_on_the_form_and_the_api(
    name: str, admin_client: Client, admin: Person, api_client_for: Callable[[Person], APIClient]
) -> None:
    reason = LIMITS[name].too_small

    page = admin_client.post("/integrations/new/?scratch=1", {**INTEGRATION_FORM, name: 0})

    assert page.status_code == 200
    assert reason in page.content.decode()
    answer = api_client_for(admin).post("/api/v1/integrations/", {**INTEGRATION_FORM, name: 0}, format="json")
    assert answer.status_code == 400
    assert answer.json()["fields"][name] == [reason]
    assert not Integration.objects.exists()


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("page_size", 1001),
        ("page_size", -5),
        ("timeout_seconds", 301),
        ("max_concurrency", 65),
        ("mass_change_max_percent", 101),
    ],
)
def test_impossible_values_are_refused_alike_on_the_form_and_the_api(
    name: str, value: int, admin_client: Client, admin: Person, api_client_for: Callable[[Person], APIClient]
) -> None:
    form = admin_client.post("/integrations/new/?scratch=1", {**INTEGRATION_FORM, name: value}).content.decode()
    answer = api_client_for(admin).post("/api/v1/integrations/", {**INTEGRATION_FORM, name: value}, format="json")

    assert answer.status_code == 400
    reason = answer.json()["fields"][name][0]
    assert reason in (LIMITS[name].too_small, LIMITS[name].too_large) or "greater than or equal to 0" in reason
    assert f'href="#id_{name}"' in form
    assert not Integration.objects.exists()


def test_the_api_takes_the_bounds_themselves(admin: Person, api_client_for: Callable[[Person], APIClient]) -> None:
    answer = api_client_for(admin).post(
        "/api/v1/integrations/",
        {
            **INTEGRATION_FORM,
            "page_size": 1000,
            "rate_limit_per_second": 0.01,
            "max_concurrency": 1,
            "timeout_seconds": 1,
        },
        format="json",
    )
    assert answer.status_code == 201, answer.json()


def test_an_error_summary_links_to_each_field_and_takes_the_focus(admin_client: Client) -> None:
    page = admin_client.post(
        "/integrations/new/?scratch=1", {**INTEGRATION_FORM, "base_url": "ftp://x", "page_size": 0, "bearer_token": ""}
    ).content.decode()

    summary = page.split('data-testid="error-summary"')[1].split("</div>")[0]
    assert 'tabindex="-1" autofocus' in page.split('data-testid="error-summary"')[0][-200:]
    links = re.findall(r'<a href="#([^"]+)">', summary)
    assert links == ["id_base_url", "id_bearer_token", "id_page_size"]
    for anchor in links:
        assert f'id="{anchor}"' in page
    assert "3 things to correct" in summary


def test_every_aria_describedby_points_at_an_element_that_exists(admin_client: Client, admin: Person) -> None:
    app = Integration.objects.create(name="A", base_url="https://a.example.com/scim", bearer_token="t")
    pages = {
        "add": admin_client.get("/integrations/new/?scratch=1"),
        "add from a template": admin_client.get("/integrations/new/?template=slack"),
        "add, refused": admin_client.post(
            "/integrations/new/?scratch=1", {**INTEGRATION_FORM, "page_size": 0, "base_url": "x"}
        ),
        "edit": admin_client.get(f"/integrations/{app.pk}/edit/"),
        "edit, refused": admin_client.post(f"/integrations/{app.pk}/edit/", {**INTEGRATION_FORM, "timeout_seconds": 0}),
        "person": admin_client.get(reverse("person_create")),
        "person, refused": admin_client.post(reverse("person_create"), {}),
        "team": admin_client.get(reverse("team_create")),
        "api keys": admin_client.get(reverse("api_key_list")),
        "api keys, refused": admin_client.post(reverse("api_key_list"), {}),
        "settings": admin_client.get("/settings/"),
        "password": admin_client.get(reverse("password_change")),
        "password, refused": admin_client.post(reverse("password_change"), {"old_password": "x"}),
    }
    for name, response in pages.items():
        assert response.status_code == 200, name
        html = response.content.decode()
        assert "aria-describedby" in html or name in ("team", "settings", "password"), name
        assert dangling_descriptions(html) == [], name


def test_a_connection_is_tested_before_saving_and_nothing_is_saved(
    peer: Peer, admin_client: Client, django_assert_max_num_queries: Any
) -> None:
    values = {**INTEGRATION_FORM, "base_url": peer.url, "bearer_token": PEER_TOKEN}

    tested = admin_client.post(reverse("integration_test_unsaved"), values, HTTP_HX_REQUEST="true")

    assert tested.status_code == 200
    html = tested.content.decode()
    assert 'id="connection-test-result"' in html
    assert "Connected" in html
    assert "answers SCIM with these values" in html
    assert not Integration.objects.exists()

    refused = admin_client.post(
        reverse("integration_test_unsaved"), {**values, "bearer_token": "wrong"}, HTTP_HX_REQUEST="true"
    ).content.decode()
    assert "Failed" in refused
    assert "credentials were refused" in refused
    assert not Integration.objects.exists()

    # Without the script: the whole form again, as it was filled in, with the result.
    page = admin_client.post(reverse("integration_test_unsaved"), values).content.decode()
    assert "<legend>Connection</legend>" in page
    assert "Connected" in page
    assert peer.url in page
    assert not Integration.objects.exists()


def test_an_edit_is_tested_with_the_stored_secret_and_the_stored_integration_is_untouched(
    peer: Peer, admin_client: Client
) -> None:
    app = Integration.objects.create(name="Peer", base_url="https://elsewhere.invalid/scim", bearer_token=PEER_TOKEN)
    before = Integration.objects.filter(pk=app.pk).values().get()

    tested = admin_client.post(
        reverse("integration_test_unsaved"),
        {**INTEGRATION_FORM, "name": "Peer", "base_url": peer.url, "bearer_token": "", "integration": app.pk},
        HTTP_HX_REQUEST="true",
    ).content.decode()

    assert "Connected" in tested
    assert Integration.objects.filter(pk=app.pk).values().get() == before  # not even the connection status


def test_a_test_with_a_wrong_base_url_says_what_to_correct_first(admin_client: Client) -> None:
    answer = admin_client.post(
        reverse("integration_test_unsaved"), {**INTEGRATION_FORM, "base_url": "ftp://x"}, HTTP_HX_REQUEST="true"
    ).content.decode()
    assert "Not tested" in answer
    assert "Correct these first: SCIM base URL." in answer
