"""``/api/v1/lifecycle-policies/`` and ``/api/v1/birthright-mappings/``: lifecycle automation,
changed through ``lifecycle.services``; and whether a group is sensitive."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from console.accounts.access import acting_person, api_policy
from console.accounts.permissions import Perm
from console.core.errors import Conflict, InvalidInput
from integrations.models import Integration, TargetGroup
from lifecycle.api.serializers import (
    BirthrightMappingSerializer,
    LifecyclePolicySerializer,
    MappingWriteSerializer,
    PlannedChangeSerializer,
    PolicyWriteSerializer,
    ScopePreviewSerializer,
    SensitiveSerializer,
    sensitive_body,
)
from lifecycle.models import BirthrightMapping, LifecyclePolicy
from lifecycle.services import (
    POLICY_FIELDS,
    group_mark_sensitive,
    mapping_approve,
    mapping_create,
    mapping_delete,
    mapping_reject,
    policy_set,
    scope_preview,
)

INTEGRATION_FILTER = OpenApiParameter("integration", int, description="Only this integration's")


def _body(request: Request) -> dict[str, Any]:
    data = request.data
    if not isinstance(data, dict):
        raise InvalidInput("Send a JSON object.")
    return dict(data.items())


def _number(value: Any, field: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and 0 < value < 2**62:
        return value
    if isinstance(value, str) and value.isascii() and value.isdigit() and 0 < len(value) < 19:
        return int(value)
    raise InvalidInput(f"Give the {field} by its id (a whole number).", field=field)


def _integration(value: Any) -> Integration:
    number = _number(value, "integration")
    found = Integration.objects.filter(pk=number).first()
    if found is None:
        raise InvalidInput(f"There is no integration with the id {number}.", field="integration")
    return found


def _by_integration(request: Request, queryset: QuerySet[Any]) -> QuerySet[Any]:
    raw = request.query_params.get("integration")
    if raw in (None, ""):
        return queryset
    return queryset.filter(integration_id=_number(raw, "integration"))


class LifecyclePolicyViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet[LifecyclePolicy]
):
    """One policy per integration: off by default, simulate (a plan, nothing sent) or on.
    ``scope_count``, ``scope_sample`` and ``scope_text`` say who it covers now."""

    access_policy = api_policy(write=Perm.MANAGE_INTEGRATIONS, preview=Perm.VIEW)
    serializer_class = LifecyclePolicySerializer
    keyset_ordering = ["id"]

    def get_queryset(self) -> QuerySet[LifecyclePolicy]:
        policies = LifecyclePolicy.objects.filter(integration__archived_at__isnull=True).select_related(
            "integration", "pilot_team", "updated_by"
        )
        if self.action == "list":
            return _by_integration(self.request, policies)
        return policies

    @extend_schema(parameters=[INTEGRATION_FILTER])
    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().list(request, *args, **kwargs)

    @extend_schema(request=PolicyWriteSerializer, responses={201: LifecyclePolicySerializer, 409: None})
    def create(self, request: Request) -> Response:
        """The integration's policy (``integration`` in the body); 409 when it has one already."""
        fields = _body(request)
        integration = _integration(fields.pop("integration", None))
        existing = LifecyclePolicy.objects.filter(integration=integration).first()
        if existing is not None:
            raise Conflict(f"{integration.name} has a lifecycle policy already ({existing.pk}): PATCH it.")
        policy = policy_set(actor=acting_person(request), integration=integration, fields=fields, request=request)
        return Response(LifecyclePolicySerializer(policy).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=PolicyWriteSerializer, responses={200: LifecyclePolicySerializer})
    def partial_update(self, request: Request, pk: str | None = None) -> Response:
        policy = self.get_object()
        fields = _body(request)
        if "integration" in fields and fields["integration"] != policy.integration_id:
            raise InvalidInput("A policy stays with its integration.", field="integration")
        fields.pop("integration", None)
        policy = policy_set(
            actor=acting_person(request), integration=policy.integration, fields=fields, request=request
        )
        return Response(LifecyclePolicySerializer(policy).data)

    @extend_schema(request=PolicyWriteSerializer, responses={200: ScopePreviewSerializer})
    @action(detail=False, methods=["post"])
    def preview(self, request: Request) -> Response:
        """Who a scope would cover, before it is saved: the fields given over the integration's
        policy when ``integration`` names one with a policy, else over an empty one."""
        fields = _body(request)
        raw = fields.pop("integration", None)
        current = None
        if raw not in (None, ""):
            current = LifecyclePolicy.objects.filter(integration=_integration(raw)).first()
        fields = {name: value for name, value in fields.items() if name in POLICY_FIELDS}
        return Response(scope_preview(fields, current))

    @extend_schema(responses={200: PlannedChangeSerializer(many=True)})
    @action(detail=True, methods=["get"])
    def plan(self, request: Request, pk: str | None = None) -> Response:
        """What the policy would do, recorded while it simulates: newest first."""
        policy = self.get_object()
        self.keyset_ordering = ["-planned_at", "-id"]
        changes: Any = policy.planned_changes.select_related("person")
        page = self.paginate_queryset(changes)
        return self.get_paginated_response(PlannedChangeSerializer(page, many=True).data)


class BirthrightMappingViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet[BirthrightMapping]
):
    """Mappings from a team (or conditions on people's attributes) to groups. One that grants a
    sensitive group is ``pending`` until a second admin approves it."""

    access_policy = api_policy(write=Perm.MANAGE_INTEGRATIONS, approve=Perm.APPROVE, reject=Perm.APPROVE)
    serializer_class = BirthrightMappingSerializer
    keyset_ordering = ["id"]

    def get_queryset(self) -> QuerySet[BirthrightMapping]:
        mappings = BirthrightMapping.objects.filter(integration__archived_at__isnull=True).select_related(
            "integration", "team", "created_by", "decided_by"
        )
        if self.action == "list":
            return _by_integration(self.request, mappings).prefetch_related("groups")
        return mappings

    @extend_schema(parameters=[INTEGRATION_FILTER])
    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().list(request, *args, **kwargs)

    @extend_schema(request=MappingWriteSerializer, responses={201: BirthrightMappingSerializer})
    def create(self, request: Request) -> Response:
        fields = _body(request)
        integration = _integration(fields.get("integration"))
        mapping = mapping_create(
            actor=acting_person(request),
            integration=integration,
            team=fields.get("team"),
            conditions=fields.get("conditions"),
            groups=fields.get("groups"),
            request=request,
        )
        return Response(BirthrightMappingSerializer(mapping).data, status=status.HTTP_201_CREATED)

    def destroy(self, request: Request, pk: str | None = None) -> Response:
        """Delete: what only this mapping granted is taken away by the policy."""
        mapping_delete(actor=acting_person(request), mapping=self.get_object(), request=request)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=None, responses={200: BirthrightMappingSerializer, 409: None})
    @action(detail=True, methods=["post"])
    def approve(self, request: Request, pk: str | None = None) -> Response:
        """A second admin lets a pending mapping take effect (409 for its creator)."""
        mapping = mapping_approve(actor=acting_person(request), mapping=self.get_object(), request=request)
        return Response(BirthrightMappingSerializer(mapping).data)

    @extend_schema(request=None, responses={200: BirthrightMappingSerializer, 409: None})
    @action(detail=True, methods=["post"])
    def reject(self, request: Request, pk: str | None = None) -> Response:
        mapping = mapping_reject(actor=acting_person(request), mapping=self.get_object(), request=request)
        return Response(BirthrightMappingSerializer(mapping).data)


class GroupSensitiveView(APIView):
    """``/api/v1/integrations/{id}/groups/{group_pk}/sensitive/``: whether mappings that grant
    the group need a second admin; POST ``{"sensitive": true|false}`` marks it."""

    access_policy = api_policy(write=Perm.MANAGE_INTEGRATIONS)

    def _group(self, pk: int, group_pk: int) -> TargetGroup:
        return get_object_or_404(
            TargetGroup.objects.select_related("integration"),
            pk=group_pk,
            integration_id=pk,
            integration__archived_at__isnull=True,
        )

    @extend_schema(responses={200: SensitiveSerializer})
    def get(self, request: Request, pk: int, group_pk: int) -> Response:
        return Response(sensitive_body(self._group(pk, group_pk).pk))

    @extend_schema(request=SensitiveSerializer, responses={200: SensitiveSerializer})
    def post(self, request: Request, pk: int, group_pk: int) -> Response:
        group = self._group(pk, group_pk)
        body = _body(request)
        if "sensitive" not in body:
            raise InvalidInput("Say whether the group is sensitive (true or false).", field="sensitive")
        group_mark_sensitive(actor=acting_person(request), group=group, sensitive=body["sensitive"], request=request)
        return Response(sensitive_body(group.pk))
