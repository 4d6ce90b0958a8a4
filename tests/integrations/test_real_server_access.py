"""The real SCIM server reached every way an integration can: bearer token, basic
authentication, TLS with a CA of its own; and what it says about itself (capabilities,
extension schemas) turned into health and the reverse index of extension attributes."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.test import Client

from integrations.discovery import connection_test, normalized_name
from integrations.extraction import extraction_run_execute
from integrations.models import ExtensionAttribute, ExtractionRun, Integration, TargetUser
from integrations.selectors import integration_health
from tests.scim_peer import ACME, BASIC_PASSWORD, BASIC_USER, ENTERPRISE, Authority, Peer

pytestmark = pytest.mark.django_db

DEPARTMENT = "urn_ietf_params_scim_schemas_extension_enterprise_2_0_user_department"


def run_now(integration: Integration) -> ExtractionRun:
    run = ExtractionRun.objects.create(integration=integration, trigger="manual")
    result = extraction_run_execute(run_id=run.pk)
    assert result is not None
    return result


def test_tls_with_the_integrations_own_ca_succeeds_and_without_it_fails_naming_the_cause(
    peer: Peer, peer_tls_url: str, authority: Authority, make_integration: Callable[..., Integration]
) -> None:
    peer.user("ada")
    trusted = make_integration(peer_tls_url, name="With CA", ca_certificate=authority.ca_pem)
    run = run_now(trusted)
    assert run.status == "succeeded", run.error
    assert TargetUser.objects.filter(integration=trusted).count() == 1

    untrusted = make_integration(peer_tls_url, name="Without CA")
    failed = run_now(untrusted)
    assert failed.status == "failed"
    assert "TLS: the certificate of host" in failed.error
    assert "is not trusted (unknown certificate authority)" in failed.error
    assert "_ssl.c" not in failed.error
    result = connection_test(integration=untrusted)
    assert (result.ok, result.cause) == (False, "tls")
    assert "CA certificate" in result.cause_label


def test_basic_authentication(peer: Peer, peer_basic_url: str, make_integration: Callable[..., Integration]) -> None:
    peer.user("ada")
    basic = {"auth_type": "basic", "bearer_token": "", "basic_username": BASIC_USER}
    good = make_integration(peer_basic_url, name="Good", basic_password=BASIC_PASSWORD, **basic)
    assert run_now(good).status == "succeeded"
    assert TargetUser.objects.get(integration=good).user_name == "ada"
    wrong = make_integration(peer_basic_url, name="Wrong", basic_password="not-it", **basic)
    run = run_now(wrong)
    assert run.status == "failed"
    assert "401" in run.error
    assert "credentials were refused" in run.error
    assert "not-it" not in run.error


def test_a_wrong_bearer_token_is_refused_by_the_server_and_named(
    peer: Peer, make_integration: Callable[..., Integration]
) -> None:
    integration = make_integration(peer.url, bearer_token="wrong-token")
    result = connection_test(integration=integration)
    assert (result.ok, result.cause) == (False, "authentication")
    assert "wrong-token" not in result.error
    health = integration_health(integration=Integration.objects.get(pk=integration.pk))
    assert (health.connection_status, health.needs_attention) == ("failed", True)


def test_connection_test_records_capabilities_for_health(
    peer: Peer, make_integration: Callable[..., Integration]
) -> None:
    integration = make_integration(peer.url)
    result = connection_test(integration=integration)
    assert result.ok, result.error
    health = integration_health(integration=Integration.objects.get(pk=integration.pk))
    assert health.connection_status == "ok"
    assert health.capabilities["patch"] is True
    assert set(health.capabilities["resource_types"]) >= {"User", "Group"}


def test_normalized_names() -> None:
    assert normalized_name(ENTERPRISE, "department") == DEPARTMENT
    assert normalized_name(ENTERPRISE, "manager.value") == (
        "urn_ietf_params_scim_schemas_extension_enterprise_2_0_user_manager_value"
    )


def test_extension_schemas_build_the_reverse_index_and_users_show_their_values(
    peer: Peer, make_integration: Callable[..., Integration], admin_client: Client
) -> None:
    peer.user(
        "ada",
        **{
            ENTERPRISE: {"department": "Research", "manager": {"value": "boss-1"}},
            ACME: {"badgeNumber": "B-42", "building": {"floor": 3}},
        },
    )
    integration = make_integration(peer.url, discover_extensions=True)
    assert run_now(integration).status == "succeeded"

    index = dict(ExtensionAttribute.objects.filter(integration=integration).values_list("normalized_name", "scim_path"))
    assert index[DEPARTMENT] == f"{ENTERPRISE}:department"
    assert index["urn_ietf_params_scim_schemas_extension_enterprise_2_0_user_manager_value"] == (
        f"{ENTERPRISE}:manager.value"
    )
    assert index["urn_acme_params_scim_schemas_extension_acme_1_0_user_badgenumber"] == f"{ACME}:badgeNumber"
    assert index["urn_acme_params_scim_schemas_extension_acme_1_0_user_building_floor"] == f"{ACME}:building.floor"
    assert not any(name.startswith("urn_ietf_params_scim_schemas_core") for name in index)

    # The Provisioning tab lists them, by the names transformers use.
    detail = admin_client.get(f"/integrations/{integration.pk}/provisioning/").content.decode()
    assert DEPARTMENT in detail
    assert f"{ACME}:badgeNumber" in detail
    user = TargetUser.objects.get(integration=integration, user_name="ada")
    page = admin_client.get(f"/integrations/{integration.pk}/users/{user.pk}/").content.decode()
    # The short name, with the full URN on hover.
    assert f'<dt><abbr class="urn" title="{ENTERPRISE}:department">department</abbr></dt><dd>Research</dd>' in page
    assert "<dd>B-42</dd>" in page
    assert "<dd>3</dd>" in page


def test_discovery_switched_off_reads_no_schemas(peer: Peer, make_integration: Callable[..., Integration]) -> None:
    integration = make_integration(peer.url, discover_extensions=False)
    assert run_now(integration).status == "succeeded"
    assert not ExtensionAttribute.objects.filter(integration=integration).exists()


def test_member_of_group_filter_takes_a_name_or_an_id(
    peer: Peer, make_integration: Callable[..., Integration], admin_client: Client
) -> None:
    ada, bob = peer.user("ada"), peer.user("bob")
    peer.group("Engineers", [ada])
    peer.group("Sales", [bob])
    integration = make_integration(peer.url)
    assert run_now(integration).status == "succeeded"
    by_name = admin_client.get(f"/integrations/{integration.pk}/users/?group=engineers").content.decode()
    assert ">ada<" in by_name
    assert ">bob<" not in by_name
    sales = integration.target_groups.get(display_name="Sales")
    api = admin_client.get(f"/api/v1/integrations/{integration.pk}/users/?group={sales.pk}").json()
    assert [u["user_name"] for u in api["results"]] == ["bob"]
