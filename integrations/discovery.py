"""What an application says about itself: capabilities, resource types and extension schemas."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import httpx
import pydantic
from django.db import transaction
from django.utils import timezone
from scim2_models import Context, ResourceType, Schema, ServiceProviderConfig

from console.core.redaction import integration_redactor, redact
from integrations import dialect
from integrations.models import ExtensionAttribute, Integration
from integrations.scim_client import (
    ScimBadResponse,
    ScimClient,
    ScimClientError,
    ScimNotFound,
    ScimNotImplemented,
    ScimTransient,
    StatelessClient,
    list_resources,
    verify_setting,
)

CORE_SCHEMAS = {
    "urn:ietf:params:scim:schemas:core:2.0:User",
    "urn:ietf:params:scim:schemas:core:2.0:Group",
}
CAUSE_LABELS = {
    "dns": "the host name does not resolve (DNS)",
    "tls": "the TLS certificate could not be verified (set the CA certificate?)",
    "authentication": "the credentials were refused (401 / 403)",
    "not_found": "a path answered 404 (check the base URL and endpoint paths)",
    "not_scim": "the answer is not SCIM",
    "unreachable": "the server did not answer (connection refused, dropped or timed out)",
    "rate_limited": "the application asked the console to slow down (429)",
    "server_error": "the application failed (5xx)",
    "bad_gateway": "a gateway in front of the application got no valid answer from it (502)",
    "unavailable": "the application is unavailable: overloaded or down for maintenance (503)",
    "gateway_timeout": "a gateway in front of the application gave up waiting for it (504)",
    "bad_request": "the server refused the request",
    "not_implemented": "the application does not implement this (501)",
    "conflict": "conflict",
    "error": "error",
}
CAPABILITIES = ("patch", "filter", "bulk", "etag", "sort", "changePassword")
# An answer that arrived, in words: a server error is the application's failure, not a
# network's (ScimTransient covers both; its ``status`` tells them apart).
STATUS_WORDS = {
    429: "too many requests",
    500: "it failed",
    501: "not implemented",
    502: "bad gateway: a proxy in front of it got no valid answer from it",
    503: "unavailable: overloaded or down for maintenance",
    504: "gateway timeout: a proxy in front of it gave up waiting for it",
}
STATUS_CAUSES = {429: "rate_limited", 502: "bad_gateway", 503: "unavailable", 504: "gateway_timeout"}


def normalized_name(schema_urn: str, attribute_path: str) -> str:
    """``urn:…:enterprise:2.0:User`` + ``manager.value`` → ``urn_…_enterprise_2_0_user_manager_value``."""
    return re.sub(r"[^a-z0-9]+", "_", f"{schema_urn}:{attribute_path}".lower()).strip("_")


@dataclass
class ConnectionResult:
    ok: bool
    error: str = ""
    cause: str = ""
    capabilities: dict[str, Any] = field(default_factory=dict)

    @property
    def cause_label(self) -> str:
        return CAUSE_LABELS.get(self.cause, self.cause)

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "error": self.error, "cause": self.cause, "capabilities": self.capabilities}


def _validated(model: Any, body: dict[str, Any], what: str) -> Any:
    try:
        return model.model_validate(body, scim_ctx=Context.RESOURCE_QUERY_RESPONSE)
    except pydantic.ValidationError as exc:
        problem = exc.errors()[0]
        where = ".".join(str(part) for part in problem["loc"]) or "body"
        raise ScimBadResponse(f"{what} is not valid SCIM ({where}: {problem['msg']})") from exc


def connection_test(*, integration: Integration, client: ScimClient | None = None) -> ConnectionResult:
    """Read ServiceProviderConfig, ResourceTypes and one user; remember the outcome for health.

    One try per request: someone is waiting for the answer, and a retry would only hide it.
    """
    result = _connection_read(integration, client or ScimClient(integration, read_attempts=1))
    Integration.objects.filter(pk=integration.pk).update(
        connection_status="ok" if result.ok else "failed",
        connection_checked_at=timezone.now(),
        connection_error=result.error,
        **({"capabilities": result.capabilities} if result.ok else {}),
    )
    if result.ok and result.capabilities.get("filter") is False and not dialect.refused(integration, "filter"):
        # The console will not filter (lookups.cannot_filter): the profile says so, and what it does instead.
        dialect.learn(
            integration,
            "filter",
            False,
            note="ServiceProviderConfig does not list filter as supported",
            source="config",
        )
    return result


def connection_test_unsaved(*, integration: Integration) -> ConnectionResult:
    """The same reads for an integration not saved (the form's values before Save): nothing is
    written, and its own short-lived connection pool, not a saved integration's."""
    http = StatelessClient(
        verify=verify_setting(integration),
        timeout=httpx.Timeout(integration.timeout_seconds),
        limits=httpx.Limits(max_connections=1),
    )
    client = ScimClient(integration, http=http, read_attempts=1)
    client.defer_learning = True  # what it learns of the dialect has no integration to go to yet
    try:
        return _connection_read(integration, client)
    finally:
        http.close()


def _connection_read(integration: Integration, client: ScimClient) -> ConnectionResult:
    try:
        config = _validated(ServiceProviderConfig, client.get_json("ServiceProviderConfig"), "ServiceProviderConfig")
        types_body = client.get_json("ResourceTypes")
        types = [
            _validated(ResourceType, resource, "a ResourceType")
            for resource in types_body.get("Resources") or []
            if isinstance(resource, dict)
        ]
        # A JSON answer is not enough: a REST API that is not SCIM answers JSON too.
        # One user: count=1, unless the application refuses count (then its own page size, learned).
        first, _ = client.first_page(integration.users_endpoint, {}, 1)
        list_resources(integration.users_endpoint, first)
    except ScimClientError as exc:
        result = ConnectionResult(
            ok=False, error=redact(failure_message(exc), secrets=integration_redactor(integration)), cause=cause_of(exc)
        )
    else:
        capabilities: dict[str, Any] = {
            name: bool(getattr(getattr(config, _field_of(name), None), "supported", False)) for name in CAPABILITIES
        }
        capabilities["max_results"] = getattr(config.filter, "max_results", None) if config.filter else None
        capabilities["bulk_max_operations"] = getattr(config.bulk, "max_operations", None) if config.bulk else None
        capabilities["resource_types"] = [t.name for t in types if t.name]
        result = ConnectionResult(ok=True, capabilities=integration_redactor(integration).values(capabilities))
    return result


def _field_of(capability: str) -> str:
    return "change_password" if capability == "changePassword" else capability


def cause_of(error: ScimClientError) -> str:
    """A short name for why a connection failed, for people and for the API."""
    status = error.status
    if isinstance(error, ScimTransient) and status is not None:  # an answer arrived: the application's doing
        return STATUS_CAUSES.get(status, "server_error")
    return {
        "ScimDnsError": "dns",
        "ScimNotImplemented": "not_implemented",
        "ScimTlsError": "tls",
        "ScimAuthenticationFailed": "authentication",
        "ScimNotFound": "not_found",
        "ScimBadResponse": "not_scim",
        "ScimTransient": "unreachable",
        "ScimBadRequest": "bad_request",
        "ScimConflict": "conflict",
    }.get(type(error).__name__, "error")


def status_in_words(status: int) -> str:
    """``500`` → ``it failed``: what an HTTP status says happened at the application."""
    return STATUS_WORDS.get(status) or ("a server error" if status >= 500 else "refused")


def failure_message(error: ScimClientError) -> str:
    """The error, told as what the application answered when an answer arrived with a server error.

    ``GET …/Users answered 500: db down`` → ``The application answered 500 (it failed): db down
    (GET …/Users)``; a connection that failed (no answer) keeps its own message.
    """
    status = error.status
    message = str(error)
    if not isinstance(error, ScimTransient) or status is None:
        return message
    where, answered, detail = message.partition(f" answered {status}")
    if not answered:
        return f"The application answered {status} ({status_in_words(status)}): {message}"
    return f"The application answered {status} ({status_in_words(status)}){detail} ({where})"


class SchemasUnavailable(ScimClientError):
    """The application has no ``/Schemas`` (404 or 501): there is nothing to discover."""


def extension_index_build(*, integration: Integration, client: ScimClient) -> list[ExtensionAttribute]:
    """Read ``/Schemas`` and rebuild the reverse index of every extension attribute.

    Core User and Group schemas are not indexed (their names are the fixed mapping table);
    the enterprise extension and any vendor extension are, sub-attributes included. When the
    application has no ``/Schemas``, SchemasUnavailable is raised and the index is kept.
    """
    try:
        body = client.get_json("Schemas")
    except (ScimNotFound, ScimNotImplemented) as exc:
        raise SchemasUnavailable(f"{exc} (the application has no /Schemas)") from exc
    rows: dict[str, ExtensionAttribute] = {}
    scrub = integration_redactor(integration).text  # what is stored holds none of the integration's credentials
    for resource in body.get("Resources") or []:
        if not isinstance(resource, dict) or resource.get("id") in CORE_SCHEMAS:
            continue
        schema = _validated(Schema, resource, f"schema {resource.get('id', '?')}")
        urn = scrub(schema.id or "")
        for path, attribute in _attribute_paths(schema.attributes or []):
            path = scrub(path)
            name = normalized_name(urn, path)
            rows[name] = ExtensionAttribute(
                integration=integration,
                normalized_name=name,
                scim_path=f"{urn}:{path}",
                schema_urn=urn,
                attribute_type=str(getattr(attribute.type, "value", attribute.type) or ""),
                multi_valued=bool(attribute.multi_valued),
                description=scrub(attribute.description or ""),
            )
    with transaction.atomic():
        ExtensionAttribute.objects.filter(integration=integration).delete()
        ExtensionAttribute.objects.bulk_create(rows.values())
    return list(rows.values())


def _attribute_paths(attributes: list[Any], prefix: str = "") -> list[tuple[str, Any]]:
    paths: list[tuple[str, Any]] = []
    for attribute in attributes:
        if not attribute.name:
            continue
        path = f"{prefix}{attribute.name}"
        if attribute.sub_attributes:
            paths.extend(_attribute_paths(attribute.sub_attributes, f"{path}."))
        else:
            paths.append((path, attribute))
    return paths


def extension_value(resource: dict[str, Any], attribute: ExtensionAttribute) -> Any:
    """The value of an extension attribute in a stored resource, or None."""
    node: Any = resource.get(attribute.schema_urn)
    for part in attribute.scim_path[len(attribute.schema_urn) + 1 :].split("."):
        if not isinstance(node, dict):
            return None
        node = next((value for key, value in node.items() if key.lower() == part.lower()), None)
    return node
