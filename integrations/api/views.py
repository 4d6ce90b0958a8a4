"""``/api/v1/integrations/``: configuration, extraction, health and what was read."""

from __future__ import annotations

from typing import Any

from django.db.models import Q, QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from console.accounts.access import acting_person, api_policy
from console.accounts.permissions import Perm
from console.audit.services import audit_record
from integrations.api.serializers import (
    SECRET_FIELDS,
    ExtractionRunSerializer,
    IntegrationSerializer,
    TargetGroupSerializer,
    TargetUserSerializer,
)
from integrations.models import Integration
from integrations.scim_client import ScimClient, ScimClientError
from integrations.selectors import integration_health
from integrations.services import extraction_start

AUDITED_FIELDS = [f for f in IntegrationSerializer.Meta.fields if f not in {"id", "created_at", "updated_at"}]


def _public(data: dict[str, Any]) -> dict[str, Any]:
    """What may go into the audit log: secrets become a mere 'changed'."""
    return {k: ("(changed)" if k in SECRET_FIELDS else v) for k, v in data.items() if k in AUDITED_FIELDS}


class IntegrationViewSet(viewsets.ModelViewSet[Integration]):
    """Integrations. Credentials are write-only; reads say only whether each is set."""

    access_policy = api_policy(
        write=Perm.MANAGE_INTEGRATIONS, extract=Perm.EXTRACT, test_connection=Perm.MANAGE_INTEGRATIONS
    )
    queryset = Integration.objects.all()
    serializer_class = IntegrationSerializer
    keyset_ordering = ["name", "id"]
    filterset_fields = ["kind", "enabled", "provisioning_enabled"]

    def perform_create(self, serializer: serializers.BaseSerializer[Integration]) -> None:
        integration = serializer.save()
        audit_record(
            verb="integration.created",
            actor=acting_person(self.request),
            target=integration,
            request=self.request,
            after=_public(dict(serializer.validated_data)),
        )

    def perform_update(self, serializer: serializers.BaseSerializer[Integration]) -> None:
        integration = serializer.save()
        audit_record(
            verb="integration.updated",
            actor=acting_person(self.request),
            target=integration,
            request=self.request,
            after=_public(dict(serializer.validated_data)),
        )

    def perform_destroy(self, instance: Integration) -> None:
        audit_record(
            verb="integration.deleted",
            actor=acting_person(self.request),
            target=instance,
            request=self.request,
            before={"name": instance.name, "base_url": instance.base_url},
        )
        instance.delete()

    @extend_schema(request=None, responses={202: ExtractionRunSerializer})
    @action(detail=True, methods=["post"])
    def extract(self, request: Request, pk: str | None = None) -> Response:
        integration = self.get_object()
        run = extraction_start(integration=integration, trigger="api")
        audit_record(
            verb="integration.extraction_requested",
            actor=acting_person(request),
            target=integration,
            request=request,
            details={"run": run.pk},
        )
        return Response(ExtractionRunSerializer(run).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(responses={200: ExtractionRunSerializer(many=True)})
    @action(detail=True, methods=["get"])
    def runs(self, request: Request, pk: str | None = None) -> Response:
        return self._page(self.get_object().runs.all(), ExtractionRunSerializer, ["-queued_at", "-id"])

    @extend_schema(responses={200: TargetUserSerializer(many=True)})
    @action(detail=True, methods=["get"])
    def users(self, request: Request, pk: str | None = None) -> Response:
        users = self.get_object().target_users.all()
        query = request.query_params.get("q", "").strip()
        if query:
            users = users.filter(
                Q(user_name__icontains=query) | Q(display_name__icontains=query) | Q(email__icontains=query)
            )
        if request.query_params.get("active") in {"true", "false"}:
            users = users.filter(active=request.query_params["active"] == "true")
        return self._page(users, TargetUserSerializer, ["user_name", "id"])

    @extend_schema(responses={200: TargetGroupSerializer(many=True)})
    @action(detail=True, methods=["get"])
    def groups(self, request: Request, pk: str | None = None) -> Response:
        groups = self.get_object().target_groups.all()
        query = request.query_params.get("q", "").strip()
        if query:
            groups = groups.filter(display_name__icontains=query)
        return self._page(groups, TargetGroupSerializer, ["display_name", "id"])

    @action(detail=True, methods=["get"])
    def health(self, request: Request, pk: str | None = None) -> Response:
        return Response(integration_health(integration=self.get_object()).as_dict())

    @extend_schema(request=None)
    @action(detail=True, methods=["post"], url_path="test-connection")
    def test_connection(self, request: Request, pk: str | None = None) -> Response:
        """Read ServiceProviderConfig, ResourceTypes and one user; report capabilities or the cause."""
        integration = self.get_object()
        client = ScimClient(integration)
        try:
            config = client.get_json("ServiceProviderConfig")
            types = client.get_json("ResourceTypes")
            client.get_json(integration.users_endpoint, {"count": 1})
        except ScimClientError as exc:
            return Response({"ok": False, "error": str(exc), "cause": type(exc).__name__}, status=200)
        capabilities: dict[str, Any] = {
            name: bool((config.get(name) or {}).get("supported"))
            for name in ("patch", "filter", "bulk", "etag", "sort", "changePassword")
        }
        capabilities["filter_max_results"] = (config.get("filter") or {}).get("maxResults")
        resource_types = [t.get("name") for t in types.get("Resources", []) if isinstance(t, dict)]
        return Response({"ok": True, "capabilities": capabilities, "resource_types": resource_types})

    def _page(self, queryset: QuerySet[Any], serializer: Any, ordering: list[str]) -> Response:
        self.keyset_ordering = ordering
        page = self.paginate_queryset(queryset)
        return self.get_paginated_response(serializer(page, many=True).data)
