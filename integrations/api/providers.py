"""``/api/v1/providers/custom``: custom applications with external SCIM (``oaa`` integrations).

``POST providers/custom`` creates one from ``configuration_json``; ``POST
providers/custom/{id}/push`` takes its application payload; ``GET
providers/custom/{id}/comparison`` says where the payload and the SCIM side disagree.
"""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from console.accounts.access import acting_person, api_policy
from console.accounts.permissions import Perm
from console.audit.services import audit_record
from integrations.api.serializers import CustomProviderSerializer, ExtractionRunSerializer
from integrations.models import Integration, ScimComparison
from integrations.oaa import PayloadError, payload_apply, payload_parse
from integrations.services import integration_create


class CustomProviderView(APIView):
    """Create a custom application whose accounts are managed through its SCIM endpoints."""

    access_policy = api_policy(write=Perm.MANAGE_INTEGRATIONS)

    @extend_schema(request=CustomProviderSerializer, responses={201: OpenApiResponse(description="{id, name, …}")})
    def post(self, request: Request) -> Response:
        serializer = CustomProviderSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        integration = integration_create(
            actor=acting_person(request),
            fields={
                "kind": Integration.Kind.OAA,
                "name": data["name"],
                "provisioning_enabled": data["provisioning"],
                **data["configuration_json"],
            },
            request=request,
        )
        return Response(
            {
                "id": integration.pk,
                "name": integration.name,
                "kind": integration.kind,
                "provisioning": integration.provisioning_enabled,
                "external_lifecycle_management_type": "SCIM",
            },
            status=status.HTTP_201_CREATED,
        )


class CustomProviderPushView(APIView):
    """Take the application payload that is this custom application's extraction source."""

    access_policy = api_policy(write=Perm.MANAGE_INTEGRATIONS)

    @extend_schema(request=None, responses={200: ExtractionRunSerializer})
    def post(self, request: Request, pk: int) -> Response:
        integration = get_object_or_404(Integration, pk=pk, kind=Integration.Kind.OAA)
        try:
            pushed = payload_parse(request.data)
        except PayloadError as exc:
            raise ValidationError(exc.fields) from None
        run = payload_apply(integration=integration, pushed=pushed)
        audit_record(
            verb="integration.payload_pushed",
            actor=acting_person(request),
            target=integration,
            request=request,
            details={
                "run": run.pk,
                "application_type": pushed.application_type,
                "users": len(pushed.users),
                "groups": len(pushed.groups),
                "memberships": len(pushed.memberships),
            },
        )
        body = dict(ExtractionRunSerializer(run).data)
        body["user_entity_type"] = integration.user_entity_type
        body["group_entity_type"] = integration.group_entity_type
        return Response(body)


class CustomProviderComparisonView(APIView):
    """Users and groups on one side only: in the pushed payload but not in SCIM, or the reverse."""

    access_policy = api_policy()

    @extend_schema(responses={200: OpenApiResponse(description="{compared_at, agrees, counts, users_only_in_…}")})
    def get(self, request: Request, pk: int) -> Response:
        integration = get_object_or_404(Integration, pk=pk, kind=Integration.Kind.OAA)
        comparison = ScimComparison.objects.filter(integration=integration).first()
        if comparison is None:
            return Response(
                {"compared_at": None, "detail": "Not compared yet: extract the integration to read its SCIM side."}
            )
        return Response(
            {
                "compared_at": comparison.compared_at,
                "agrees": comparison.agrees,
                "counts": comparison.counts,
                "users_only_in_payload": comparison.users_only_in_payload,
                "users_only_in_scim": comparison.users_only_in_scim,
                "groups_only_in_payload": comparison.groups_only_in_payload,
                "groups_only_in_scim": comparison.groups_only_in_scim,
            }
        )
