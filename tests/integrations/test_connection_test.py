"""Test connection names why it failed: DNS, a wrong path, an answer that is not SCIM, the application failing."""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from django.test import Client
from rest_framework.test import APIClient

from console.accounts.models import Person
from integrations.discovery import connection_test
from integrations.models import Integration
from integrations.scim_client import ScimClient, ScimDnsError, ScimTransient
from tests.integrations.conftest import Front, Peer, scim_error

pytestmark = pytest.mark.django_db


def test_a_host_that_does_not_resolve_is_named_as_dns(
    make_integration: Callable[..., Integration], admin: Person, api_client_for: Callable[[Person], APIClient]
) -> None:
    integration = make_integration("https://scim.no-such-host.invalid/v2")  # .invalid never resolves (RFC 6761)
    result = connection_test(integration=integration)
    assert (result.ok, result.cause) == (False, "dns")
    assert "scim.no-such-host.invalid" in result.error
    assert "does not resolve" in result.cause_label
    answer = api_client_for(admin).post(f"/api/v1/integrations/{integration.pk}/test-connection/").json()
    assert (answer["ok"], answer["cause"]) == (False, "dns")
    assert answer["cause_label"] == result.cause_label


def test_a_path_that_answers_404_is_named(peer: Peer, make_integration: Callable[..., Integration]) -> None:
    wrong_users = make_integration(peer.url, name="Wrong users path", users_endpoint="People")
    result = connection_test(integration=wrong_users)
    assert (result.ok, result.cause) == (False, "not_found")
    assert f"{peer.url}/People" in result.error
    assert "404" in result.error
    assert "endpoint paths" in result.cause_label
    wrong_base = make_integration(f"{peer.url}/scim/v2", name="Wrong base URL")
    result = connection_test(integration=wrong_base)
    assert (result.ok, result.cause) == (False, "not_found")
    assert "ServiceProviderConfig" in result.error
    assert Integration.objects.get(pk=wrong_base.pk).connection_status == "failed"


def test_a_json_answer_that_is_not_scim_is_named(
    peer: Peer, make_integration: Callable[..., Integration], peer_behind: Callable[[Front], str]
) -> None:
    # The real server for discovery; /Users answers as a plain REST API would.
    def rest_api_users(environ: dict[str, Any]) -> tuple[int, dict[str, Any]] | None:
        return (200, {"users": [], "page": 1}) if environ["PATH_INFO"] == "/Users" else None

    integration = make_integration(peer_behind(rest_api_users))
    result = connection_test(integration=integration)
    assert (result.ok, result.cause) == (False, "not_scim")
    assert "not a SCIM response" in result.error
    assert "page, users" in result.error
    assert result.cause_label == "the answer is not SCIM"


def test_a_list_without_a_total_is_not_a_scim_list(
    peer: Peer, make_integration: Callable[..., Integration], peer_behind: Callable[[Front], str]
) -> None:
    def no_total(environ: dict[str, Any]) -> tuple[int, dict[str, Any]] | None:
        return (200, {"Resources": []}) if environ["PATH_INFO"] == "/Users" else None

    result = connection_test(integration=make_integration(peer_behind(no_total)))
    assert (result.ok, result.cause) == (False, "not_scim")
    assert "not a SCIM list response" in result.error
    assert "'totalResults' is required" in result.error


def test_a_501_is_named_and_not_retried(
    peer: Peer, make_integration: Callable[..., Integration], peer_behind: Callable[[Front], str]
) -> None:
    def no_resource_types(environ: dict[str, Any]) -> tuple[int, dict[str, Any]] | None:
        return scim_error(501, "not offered") if environ["PATH_INFO"] == "/ResourceTypes" else None

    integration = make_integration(peer_behind(no_resource_types))
    result = connection_test(integration=integration)
    assert (result.ok, result.cause) == (False, "not_implemented")
    client = ScimClient(integration, sleep=lambda seconds: None)
    with pytest.raises(Exception, match="501") as raised:
        client.get_json("ResourceTypes")
    assert not isinstance(raised.value, ScimTransient)
    assert client.requests_made == 1


def test_a_500_is_the_application_failing_with_its_detail_not_unreachable(
    peer: Peer,
    make_integration: Callable[..., Integration],
    peer_behind: Callable[[Front], str],
    admin: Person,
    admin_client: Client,
    api_client_for: Callable[[Person], APIClient],
) -> None:
    def failing_users(environ: dict[str, Any]) -> tuple[int, dict[str, Any]] | None:
        return scim_error(500, "database connection pool exhausted") if environ["PATH_INFO"] == "/Users" else None

    integration = make_integration(peer_behind(failing_users))
    result = connection_test(integration=integration)
    assert (result.ok, result.cause) == (False, "server_error")
    assert result.error.startswith("The application answered 500 (it failed): database connection pool exhausted")
    assert "/Users)" in result.error  # where it failed
    assert "unreachable" not in result.error + result.cause_label
    assert "did not answer" not in result.cause_label
    assert result.cause_label == "the application failed (5xx)"
    assert Integration.objects.get(pk=integration.pk).connection_error == result.error  # the health panel's words

    answer = api_client_for(admin).post(f"/api/v1/integrations/{integration.pk}/test-connection/").json()
    assert (answer["ok"], answer["cause"]) == (False, "server_error")
    assert answer["error"].startswith("The application answered 500 (it failed): database connection pool")
    page = admin_client.post(f"/integrations/{integration.pk}/test-connection/").content.decode()
    assert "The application answered 500 (it failed): database connection pool exhausted" in page
    assert "did not answer" not in page


@pytest.mark.parametrize(
    ("status", "words", "cause"),
    [
        (502, "bad gateway", "bad_gateway"),
        (503, "unavailable", "unavailable"),
        (504, "gateway timeout", "gateway_timeout"),
        (507, "a server error", "server_error"),
        (429, "too many requests", "rate_limited"),
    ],
)
def test_other_server_errors_name_their_status_in_words(
    status: int,
    words: str,
    cause: str,
    peer: Peer,
    make_integration: Callable[..., Integration],
    peer_behind: Callable[[Front], str],
) -> None:
    def failing(environ: dict[str, Any]) -> tuple[int, dict[str, Any]] | None:
        return scim_error(status, "try later") if environ["PATH_INFO"] == "/ServiceProviderConfig" else None

    result = connection_test(integration=make_integration(peer_behind(failing)))
    assert (result.ok, result.cause) == (False, cause)
    assert result.error.startswith(f"The application answered {status} ({words}")
    assert result.error.endswith("/ServiceProviderConfig)")
    assert ": try later" in result.error
    assert "unreachable" not in result.error + result.cause_label


def test_a_server_error_without_a_scim_body_is_still_named(make_integration: Callable[..., Integration]) -> None:
    def gateway(request: httpx.Request) -> httpx.Response:
        return httpx.Response(502, text="<html>Bad Gateway</html>", headers={"Content-Type": "text/html"})

    integration = make_integration("https://scim.example.com/v2")
    client = ScimClient(integration, http=httpx.Client(transport=httpx.MockTransport(gateway)), read_attempts=1)
    result = connection_test(integration=integration, client=client)
    assert (result.ok, result.cause) == (False, "bad_gateway")
    assert result.error == (
        "The application answered 502 (bad gateway: a proxy in front of it got no valid answer from it) "
        "(GET https://scim.example.com/v2/ServiceProviderConfig)"
    )


# --- how resolvers word it: only a mock can make every platform's message ----------------


@pytest.mark.parametrize(
    "message",
    [
        "[Errno -2] Name or service not known",
        "[Errno -3] Temporary failure in name resolution",
        "[Errno -5] No address associated with hostname",
        "[Errno 8] nodename nor servname provided, or not known",
    ],
)
def test_every_resolver_wording_is_recognised_as_dns(
    message: str, make_integration: Callable[..., Integration]
) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError(message, request=request)

    integration = make_integration("https://scim.example.com/v2")
    client = ScimClient(integration, http=httpx.Client(transport=httpx.MockTransport(refuse)), read_attempts=1)
    result = connection_test(integration=integration, client=client)
    assert (result.ok, result.cause) == (False, "dns")
    assert "scim.example.com" in result.error


def test_a_connect_error_caused_by_gaierror_is_dns(make_integration: Callable[..., Integration]) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        try:
            raise socket.gaierror(-9999, "some resolver's own words")
        except socket.gaierror as cause:
            raise httpx.ConnectError("connection failed", request=request) from cause

    integration = make_integration("https://scim.example.com/v2")
    client = ScimClient(integration, http=httpx.Client(transport=httpx.MockTransport(refuse)), read_attempts=1)
    with pytest.raises(ScimDnsError, match=r"^DNS: the host scim\.example\.com"):
        client.get_json("Users")


def test_a_refused_connection_is_not_mistaken_for_dns(make_integration: Callable[..., Integration]) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno 111] Connection refused", request=request)

    integration = make_integration("https://scim.example.com/v2")
    client = ScimClient(integration, http=httpx.Client(transport=httpx.MockTransport(refuse)), read_attempts=1)
    result = connection_test(integration=integration, client=client)
    assert (result.ok, result.cause) == (False, "unreachable")
