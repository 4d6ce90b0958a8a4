"""The catalog of known applications: valid templates, the add page, the form and the API start from them."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.core.validators import URLValidator
from django.test import Client
from rest_framework.test import APIClient

from console.accounts.models import Person
from console.audit.models import AuditEvent
from integrations import catalog, dialect
from integrations.models import Integration

pytestmark = pytest.mark.django_db

# The applications the reference material lists, and the others users name most.
NAMED = [
    "Atlassian Cloud",
    "Slack",
    "GitHub Enterprise Managed Users",
    "Zoom",
    "Egnyte",
    "Sigma Computing",
    "Fivetran",
    "Harness",
    "Zapier",
    "Twingate",
    "ThousandEyes",
]
ATLASSIAN = "https://api.atlassian.com/scim/directory/{directory_id}"


@pytest.fixture
def admin_api(admin: Person, api_client_for: Callable[[Person], APIClient]) -> APIClient:
    return api_client_for(admin)


@pytest.mark.parametrize("template", catalog.TEMPLATES, ids=lambda t: t.slug)
def test_every_template_is_valid(template: catalog.Template) -> None:
    assert catalog.get(template.slug) is template
    assert template.slug != catalog.SCRATCH
    assert template.auth_type in Integration.AuthType.values
    # Every placeholder of the URL has a field on the form, and nothing else does.
    assert template.placeholder_keys == [p.key for p in template.placeholders]
    assert template.base_url.startswith("https://")
    filled = catalog.fill(template.base_url, dict.fromkeys(template.placeholder_keys, "acme-1"))
    assert "{" not in filled
    URLValidator(schemes=["https"])(filled)
    for capability, value in template.dialect.items():
        assert capability in dialect.CAPABILITIES
        assert value in (True, False, "id", "userName")
    assert set(template.dialect_notes) <= set(template.dialect)
    assert template.users_endpoint
    assert template.groups_endpoint
    if template.rate_limit_per_second is not None:
        assert template.rate_limit_per_second > 0
    if template.page_size is not None:
        assert 1 <= template.page_size <= 1000
    if template.supports_hard_delete is not None:
        assert template.dialect.get("hard_delete", template.supports_hard_delete) == template.supports_hard_delete
    if template.supports_groups is False:
        assert template.dialect.get("groups") is False
    assert template.note
    assert template.documentation
    assert template.documentation_url.startswith("https://")
    fields = template.field_values()
    assert set(fields) <= {f.name for f in Integration._meta.get_fields()}


def test_the_catalog_holds_the_applications_users_name_and_searches_them() -> None:
    names = [t.name for t in catalog.templates()]
    assert set(NAMED) <= set(names)
    assert names == sorted(names, key=str.lower)
    assert len({t.slug for t in catalog.TEMPLATES}) == len(catalog.TEMPLATES)
    assert [t.slug for t in catalog.templates("jira")] == ["atlassian-cloud"]
    assert [t.slug for t in catalog.templates("GitHub managed")] == ["github-emu"]
    assert catalog.templates("no such application") == []


def test_a_placeholder_value_must_be_given_and_stay_inside_its_part_of_the_url() -> None:
    template = catalog.get("atlassian-cloud")
    assert template is not None
    assert catalog.fill(ATLASSIAN, {"directory_id": "abc-123"}) == "https://api.atlassian.com/scim/directory/abc-123"
    with pytest.raises(catalog.TemplateValuesError) as missing:
        catalog.fill(ATLASSIAN, {}, template=template)
    assert "Directory ID" in missing.value.errors["directory_id"][0]
    with pytest.raises(catalog.TemplateValuesError) as escaping:
        catalog.fill("https://{network}.twingate.com/api/scim/v2", {"network": "evil.example.com/x#"})
    assert "only letters, digits" in escaping.value.errors["network"][0]


def test_a_documented_limit_prefills_and_an_undocumented_one_keeps_the_default() -> None:
    slack = catalog.get("slack")
    zoom = catalog.get("zoom")
    egnyte = catalog.get("egnyte")
    assert slack is not None
    assert zoom is not None
    assert egnyte is not None
    assert slack.field_values()["rate_limit_per_second"] == 3
    assert slack.field_values()["rate_limit_burst"] == 20
    assert slack.field_values()["supports_hard_delete"] is False
    assert zoom.field_values()["rate_limit_burst"] == 1  # one second's worth where no burst is documented
    assert "rate_limit_per_second" not in egnyte.field_values()
    assert "supports_hard_delete" not in egnyte.field_values()
    assert "rate limit not documented" in egnyte.limits()


def test_the_add_page_starts_with_the_catalog_and_searches_it(admin_client: Client) -> None:
    page = admin_client.get("/integrations/new/").content.decode()
    for name in NAMED:
        assert name in page
    assert "Start from scratch" in page
    assert "/integrations/new/?template=atlassian-cloud" in page
    assert "/integrations/new/?scratch=1" in page
    found = admin_client.get("/integrations/new/?q=confluence").content.decode()
    assert found.count('data-testid="catalog-template"') == 1
    assert 'id="template-atlassian-cloud"' in found
    partial = admin_client.get("/integrations/new/?q=slack", HTTP_HX_REQUEST="true").content.decode()
    assert 'data-testid="catalog"' in partial
    assert "<html" not in partial
    assert "Slack" in partial
    scratch = admin_client.get("/integrations/new/?scratch=1").content.decode()
    assert 'name="base_url"' in scratch
    assert "Choose from the catalog" in scratch


def test_an_unknown_template_on_the_add_page_goes_back_to_the_catalog(admin_client: Client) -> None:
    response = admin_client.get("/integrations/new/?template=no-such-app", follow=True)
    page = response.content.decode()
    assert "There is no template &#x27;no-such-app&#x27;" in page
    assert "Start from scratch" in page


def test_choosing_a_template_prefills_the_form_and_asks_for_its_placeholders(admin_client: Client) -> None:
    page = admin_client.get("/integrations/new/?template=atlassian-cloud").content.decode()
    assert "Add Atlassian Cloud" in page
    assert f'value="{ATLASSIAN}"' in page
    assert 'name="template_directory_id"' in page
    assert "Directory ID" in page
    assert 'name="template" value="atlassian-cloud"' in page
    assert "developer.atlassian.com" in page
    slack = admin_client.get("/integrations/new/?template=slack").content.decode()
    assert 'name="rate_limit_per_second" value="3"' in slack
    assert 'name="rate_limit_burst" value="20"' in slack
    assert 'name="supports_hard_delete" id="id_supports_hard_delete" checked' not in slack


def _form(**fields: object) -> dict[str, object]:
    """What the pre-filled form posts back, as a browser would send it."""
    return {
        "name": "Atlassian Cloud",
        "kind": "scim",
        "base_url": ATLASSIAN,
        "auth_type": "bearer",
        "bearer_token": "directory-key",
        "users_endpoint": "Users",
        "groups_endpoint": "Groups",
        "timeout_seconds": 30,
        "page_size": 100,
        "rate_limit_per_second": 10,
        "rate_limit_burst": 20,
        "max_concurrency": 4,
        "template": "atlassian-cloud",
        **fields,
    }


def test_adding_from_a_template_in_the_form_records_it_and_applies_its_dialect(admin_client: Client) -> None:
    response = admin_client.post("/integrations/new/?template=atlassian-cloud", _form(template_directory_id="d-42"))
    assert response.status_code == 302, response.content.decode()[:3000]
    integration = Integration.objects.get(name="Atlassian Cloud")
    assert integration.base_url == "https://api.atlassian.com/scim/directory/d-42"
    assert integration.catalog_template == "atlassian-cloud"
    assert integration.supports_hard_delete is False
    assert dialect.value(integration, "filter_or") is False
    assert integration.dialect["hard_delete"]["source"] == "catalog"
    assert "deactivates" in integration.dialect["hard_delete"]["note"]
    detail = admin_client.get(f"/integrations/{integration.pk}/").content.decode()
    assert "Started from the Atlassian Cloud template" in detail
    event = AuditEvent.objects.get(verb="integration.created")
    assert event.details["template"] == "atlassian-cloud"


def test_a_placeholder_left_empty_in_the_form_is_a_field_error(admin_client: Client) -> None:
    response = admin_client.post("/integrations/new/?template=atlassian-cloud", _form(template_directory_id=""))
    assert response.status_code == 200
    page = response.content.decode()
    assert "Fill in {directory_id} (Directory ID): the base URL needs it." in page
    assert not Integration.objects.exists()
    bad = admin_client.post("/integrations/new/", _form(template_directory_id="a/b"))
    assert "only letters, digits" in bad.content.decode()
    assert not Integration.objects.exists()
    # A base URL written out whole needs no placeholder value.
    whole = _form(base_url="https://api.atlassian.com/scim/directory/d-9", template_directory_id="")
    assert admin_client.post("/integrations/new/", whole).status_code == 302
    assert Integration.objects.get().base_url == "https://api.atlassian.com/scim/directory/d-9"


def test_the_api_lists_the_catalog_to_a_viewer(
    make_person: Callable[..., Person], api_client_for: Callable[[Person], APIClient]
) -> None:
    viewer = api_client_for(make_person("watcher", roles=["viewer"]))
    body = viewer.get("/api/v1/integration-templates/").json()
    assert body["count"] == len(catalog.TEMPLATES)
    slugs = [t["slug"] for t in body["results"]]
    assert "atlassian-cloud" in slugs
    atlassian = next(t for t in body["results"] if t["slug"] == "atlassian-cloud")
    assert atlassian["base_url"] == ATLASSIAN
    assert atlassian["placeholders"][0]["key"] == "directory_id"
    assert atlassian["rate_limit_per_second"] is None  # not documented
    assert atlassian["dialect"]["filter_or"] is False
    found = viewer.get("/api/v1/integration-templates/", {"q": "zoom"}).json()
    assert [t["slug"] for t in found["results"]] == ["zoom"]
    assert viewer.post("/api/v1/integration-templates/", {}, format="json").status_code in (403, 405)


def test_creating_from_a_template_through_the_api_prefills_records_and_applies_the_dialect(
    admin_api: APIClient,
) -> None:
    created = admin_api.post(
        "/api/v1/integrations/",
        {"template": "atlassian-cloud", "template_values": {"directory_id": "d-7"}, "bearer_token": "k"},
        format="json",
    )
    assert created.status_code == 201, created.json()
    body = created.json()
    assert body["name"] == "Atlassian Cloud"
    assert body["base_url"] == "https://api.atlassian.com/scim/directory/d-7"
    assert body["catalog_template"] == "atlassian-cloud"
    assert body["supports_hard_delete"] is False
    integration = Integration.objects.get(pk=body["id"])
    assert dialect.value(integration, "filter") is True
    assert integration.dialect["filter"]["source"] == "catalog"

    slack = admin_api.post(
        "/api/v1/integrations/",
        {"template": "slack", "name": "Slack (Grid)", "bearer_token": "xoxp", "rate_limit_burst": 10},
        format="json",
    ).json()
    assert slack["base_url"] == "https://api.slack.com/scim/v2"
    assert slack["rate_limit_per_second"] == 3
    assert slack["rate_limit_burst"] == 10  # what the request says wins over the template
    assert slack["catalog_template"] == "slack"


@pytest.mark.parametrize(
    ("payload", "fields"),
    [
        ({"template": "no-such-app"}, {"template"}),
        ({"template": "atlassian-cloud"}, {"template_values"}),
        ({"template": "atlassian-cloud", "template_values": {"directory_id": ""}}, {"template_values"}),
        ({"template": "twingate", "template_values": {"network": "evil.com/#"}}, {"template_values"}),
        ({"template": "atlassian-cloud", "template_values": "d-1"}, {"template_values"}),
    ],
    ids=["unknown-slug", "missing-placeholder", "empty-placeholder", "unsafe-value", "not-an-object"],
)
def test_bad_template_input_gets_a_400_with_fields(
    admin_api: APIClient, payload: dict[str, object], fields: set[str]
) -> None:
    response = admin_api.post("/api/v1/integrations/", {**payload, "bearer_token": "k"}, format="json")
    assert response.status_code == 400
    body = response.json()
    assert set(body["fields"]) == fields
    assert body["code"] == "invalid"
    if payload.get("template") == "atlassian-cloud" and isinstance(payload.get("template_values", {}), dict):
        assert "Directory ID" in body["fields"]["template_values"]["directory_id"][0]
    assert not Integration.objects.exists()


def test_a_template_applies_only_when_an_integration_is_added(admin_api: APIClient) -> None:
    integration = Integration.objects.create(name="Plain", base_url="https://x.example.com/scim", bearer_token="t")
    response = admin_api.patch(f"/api/v1/integrations/{integration.pk}/", {"template": "slack"}, format="json")
    assert response.status_code == 400
    assert "only when an integration is added" in response.json()["fields"]["template"][0]
    integration.refresh_from_db()
    assert integration.catalog_template == ""
