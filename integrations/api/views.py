"""``/api/v1/integrations/``: configuration, extraction, health and what was read."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import QuerySet
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    PolymorphicProxySerializer,
    extend_schema,
    inline_serializer,
)
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from console.accounts.access import acting_person, api_policy
from console.accounts.permissions import Perm
from console.audit.services import audit_record
from console.core.pagination import PAGE_PARAMETERS, KeysetApiPagination
from console.core.tables import Table
from integrations import catalog, dialect
from integrations.api.serializers import (
    ExtensionAttributeSerializer,
    ExtractionRunSerializer,
    GroupMemberSerializer,
    GroupMembersSerializer,
    GroupMembersSummarySerializer,
    IntegrationSerializer,
    PersonAccountsAsOfSerializer,
    PersonAccountSerializer,
    ProbeRequestSerializer,
    ProbeSerializer,
    TargetGroupSerializer,
    TargetUserSerializer,
)
from integrations.discovery import connection_test
from integrations.explain import person_accounts_explained
from integrations.extraction import extraction_start
from integrations.filters import TargetGroupFilterSet, TargetUserFilterSet
from integrations.history import AS_OF_HELP, as_of_parse, member_sort_key, members_as_of, person_accounts_as_of
from integrations.models import Integration, TargetGroup
from integrations.probe import probe_start, probe_state
from integrations.selectors import integration_health, person_accounts, with_seen_at
from integrations.services import integration_delete
from integrations.tables import GROUPS_TABLE, RUNS_TABLE, USERS_TABLE


def _probe_body(integration: Integration, state: dict[str, Any] | None) -> dict[str, Any]:
    return {
        "probe": state,
        "dialect": dialect.rows(integration),
        "dialect_probed_at": integration.dialect_probed_at,
    }


class IntegrationViewSet(viewsets.ModelViewSet[Integration]):
    """Integrations. Credentials are write-only; reads say only whether each is set. The serializer
    saves through integration_create and integration_update, deletion is integration_delete."""

    access_policy = api_policy(
        write=Perm.MANAGE_INTEGRATIONS, extract=Perm.EXTRACT, test_connection=Perm.MANAGE_INTEGRATIONS
    )
    queryset = Integration.objects.all()
    serializer_class = IntegrationSerializer
    keyset_ordering = ["name", "id"]
    filterset_fields = ["kind", "enabled", "provisioning_enabled"]

    def get_queryset(self) -> QuerySet[Integration]:
        """Live integrations; a change to a deleted one reaches integration_update, which refuses it (409),
        and a deleted one's runs stay readable, as its actions, audit trail and revocation latency do."""
        if self.action in ("update", "partial_update", "runs"):
            return Integration.all_objects.all()
        return Integration.objects.all()

    def perform_destroy(self, instance: Integration) -> None:
        """Archived: gone from the console, its actions, runs and audit trail kept (see integration_delete)."""
        integration_delete(actor=acting_person(self.request), integration=instance, request=self.request)

    @extend_schema(request=None, responses={202: ExtractionRunSerializer, 409: None})
    @action(detail=True, methods=["post"])
    def extract(self, request: Request, pk: str | None = None) -> Response:
        """Queue an extraction (or return the one under way); 409 while the integration is disabled."""
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
        return self._page(self.get_object().runs.all(), ExtractionRunSerializer, RUNS_TABLE)

    @extend_schema(responses={200: TargetUserSerializer(many=True)})
    @action(detail=True, methods=["get"])
    def users(self, request: Request, pk: str | None = None) -> Response:
        """Accounts, filtered as on the Users tab: ``q``, ``active``, ``group`` (id or exact name)."""
        users = TargetUserFilterSet(
            request.query_params, with_seen_at(self.get_object().target_users.select_related("owner"))
        ).qs
        return self._page(users, TargetUserSerializer, USERS_TABLE)

    @extend_schema(responses={200: TargetGroupSerializer(many=True)})
    @action(detail=True, methods=["get"])
    def groups(self, request: Request, pk: str | None = None) -> Response:
        groups = TargetGroupFilterSet(request.query_params, with_seen_at(self.get_object().target_groups.all())).qs
        return self._page(groups, TargetGroupSerializer, GROUPS_TABLE)

    @extend_schema(
        parameters=[OpenApiParameter("as_of", str, description=AS_OF_HELP), *PAGE_PARAMETERS],
        responses={200: GroupMembersSerializer},
    )
    @action(detail=True, methods=["get"], url_path=r"groups/(?P<group_pk>[0-9]+)/members")
    def group_members(self, request: Request, pk: str | None = None, group_pk: str | None = None) -> Response:
        """The group's members now, or at ``as_of`` (from the access history), each with its account
        where the console read one: the group's fields and one page of its members (``results``, by
        user name, then remote id; ``next`` and ``previous`` as every list has), the same shape now
        and then; ``count`` is of every page."""
        integration = self.get_object()
        group = get_object_or_404(TargetGroup, pk=group_pk, integration=integration)
        at = as_of_parse(request.query_params.get("as_of"))
        found = members_as_of(group=group, at=at)
        paginator = KeysetApiPagination()
        page = paginator.paginate_rows(found.members, request, key=member_sort_key)
        body = GroupMembersSummarySerializer(found).data
        return Response({**body, **paginator.page_fields(), "results": GroupMemberSerializer(page, many=True).data})

    @extend_schema(responses={200: ExtensionAttributeSerializer(many=True)})
    @action(detail=True, methods=["get"], url_path="extension-attributes")
    def extension_attributes(self, request: Request, pk: str | None = None) -> Response:
        """The reverse index built from ``/Schemas``: normalized name ↔ SCIM path."""
        attributes = self.get_object().extension_attributes.all()
        return self._page(attributes, ExtensionAttributeSerializer, ["normalized_name", "id"])

    @action(detail=True, methods=["get"])
    def health(self, request: Request, pk: str | None = None) -> Response:
        return Response(integration_health(integration=self.get_object()).as_dict())

    @extend_schema(request=None)
    @action(detail=True, methods=["post"], url_path="test-connection")
    def test_connection(self, request: Request, pk: str | None = None) -> Response:
        """Read ServiceProviderConfig, ResourceTypes and one user; report capabilities or the cause."""
        result = connection_test(integration=self.get_object())
        return Response({**result.as_dict(), "cause_label": result.cause_label if not result.ok else ""})

    @extend_schema(request=ProbeRequestSerializer, responses={200: ProbeSerializer, 202: ProbeSerializer})
    @action(detail=True, methods=["get", "post"])
    def probe(self, request: Request, pk: str | None = None) -> Response:
        """GET: the dialect profile and the latest probe. POST: probe the application (reads; with
        ``{"writes": true}`` the write checks too, on a disposable user and group): 202 with the
        probe queued, or the one already under way (``queued`` false)."""
        integration = self.get_object()
        if request.method != "POST":
            return Response(_probe_body(integration, probe_state(integration=integration)))
        asked = ProbeRequestSerializer(data=request.data)
        asked.is_valid(raise_exception=True)
        state, queued = probe_start(
            integration=integration, writes=asked.validated_data["writes"], actor=acting_person(request)
        )
        return Response({**_probe_body(integration, state), "queued": queued}, status=status.HTTP_202_ACCEPTED)

    def _page(self, queryset: QuerySet[Any], serializer: Any, ordering: list[str] | Table) -> Response:
        """One keyset page; a table's list also sorts by ``?ordering=`` as its tab does."""
        if isinstance(ordering, Table):
            self.keyset_table = ordering
        else:
            self.keyset_ordering = ordering
        page = self.paginate_queryset(queryset)
        return self.get_paginated_response(serializer(page, many=True).data)


TEMPLATE_SHAPE = inline_serializer(
    "IntegrationTemplate",
    {
        "slug": serializers.CharField(),
        "name": serializers.CharField(),
        "base_url": serializers.CharField(help_text="With {placeholders}, filled in from template_values."),
        "placeholders": serializers.ListField(child=serializers.DictField()),
        "auth_type": serializers.CharField(),
        "users_endpoint": serializers.CharField(),
        "groups_endpoint": serializers.CharField(),
        "page_size": serializers.IntegerField(allow_null=True),
        "rate_limit_per_second": serializers.FloatField(allow_null=True),
        "rate_limit_burst": serializers.IntegerField(allow_null=True),
        "members_per_request": serializers.IntegerField(allow_null=True),
        "supports_hard_delete": serializers.BooleanField(allow_null=True),
        "supports_groups": serializers.BooleanField(allow_null=True),
        "dialect": serializers.DictField(),
        "note": serializers.CharField(),
        "documentation": serializers.CharField(),
        "documentation_url": serializers.CharField(),
        "keywords": serializers.ListField(child=serializers.CharField()),
    },
)


class IntegrationTemplateListView(APIView):
    """The catalog of known applications that ``POST /api/v1/integrations/`` takes as ``template``."""

    access_policy = api_policy()

    @extend_schema(
        parameters=[OpenApiParameter("q", str, description="Words the name (or another name) holds")],
        responses={
            200: inline_serializer(
                "IntegrationTemplateList",
                {"count": serializers.IntegerField(), "results": serializers.ListField(child=TEMPLATE_SHAPE)},
            )
        },
    )
    def get(self, request: Request) -> Response:
        """Every template (``null`` where the vendor does not document a value), by name."""
        found = catalog.templates(request.query_params.get("q", ""))
        return Response({"count": len(found), "results": [template.as_dict() for template in found]})


class PersonAccountsView(APIView):
    """``/api/v1/people/{id}/accounts/``: the person's accounts in every integration (read as people are)."""

    access_policy = api_policy()

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "as_of",
                str,
                description=f"{AS_OF_HELP} The answer is then an object: the accounts the person had then, "
                "each with its status and groups then, and what the history could say.",
            )
        ],
        responses={
            200: OpenApiResponse(
                PolymorphicProxySerializer(
                    component_name="PersonAccountsNowOrAsOf",
                    serializers=[PersonAccountSerializer(many=True), PersonAccountsAsOfSerializer],
                    resource_type_field_name=None,
                    many=False,
                ),
                description="Without `as_of`: a list, each account now (with why the person has it and each of "
                "its groups). With `as_of`: an object (PersonAccountsAsOf) whose `results` are the accounts then.",
            )
        },
    )
    def get(self, request: Request, pk: int) -> Response:
        person = get_object_or_404(get_user_model(), pk=pk)
        at = as_of_parse(request.query_params.get("as_of"))
        if at is not None:
            return Response(PersonAccountsAsOfSerializer(person_accounts_as_of(person_id=person.pk, at=at)).data)
        accounts = person_accounts(person_id=person.pk)
        person_accounts_explained(person.pk, accounts)
        return Response(PersonAccountSerializer(accounts, many=True).data)
