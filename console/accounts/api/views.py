"""``/api/v1/people/``, ``roles/``, ``api-keys/`` and ``teams/``: the same services the UI calls."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from console.accounts.access import acting_person, api_policy
from console.accounts.api.serializers import (
    ApiKeySerializer,
    NewApiKeySerializer,
    PersonDetailSerializer,
    PersonSerializer,
    RoleSerializer,
    TeamCreateSerializer,
    TeamMembersChangeSerializer,
    TeamMemberSerializer,
    TeamSerializer,
)
from console.accounts.filters import ApiKeyFilterSet, PersonFilterSet, TeamFilterSet
from console.accounts.models import ApiKey, Person, Role, Team
from console.accounts.permissions import Perm
from console.accounts.services import (
    AccessError,
    api_key_create,
    api_key_revoke,
    person_create,
    person_set_active,
    person_set_password,
    person_set_roles,
    person_update,
    team_create,
    team_delete,
    team_members_change,
    team_set_roles,
)
from console.accounts.tables import PEOPLE_TABLE, TEAMS_TABLE, teams_sortable
from console.audit.services import audit_record
from console.core.tables import Table


class PersonViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet[Person],
):
    """People. Deactivate with ``PATCH {"active": false}``; people are never deleted here."""

    access_policy = api_policy(write=Perm.MANAGE_PEOPLE)
    queryset = Person.objects.all()
    filterset_class = PersonFilterSet
    keyset_ordering = ["username", "id"]
    keyset_table = PEOPLE_TABLE

    def get_queryset(self) -> QuerySet[Person]:
        qs = Person.objects.select_related("manager")
        return qs.prefetch_related("roles") if self.action == "list" else qs

    def get_serializer_class(self) -> type[serializers.BaseSerializer[Person]]:
        return PersonSerializer if self.action == "list" else PersonDetailSerializer

    @transaction.atomic
    def perform_create(self, serializer: serializers.BaseSerializer[Person]) -> None:
        data = dict(serializer.validated_data)
        active = data.pop("is_active", True)
        with _password_refusals():
            person = person_create(
                actor=acting_person(self.request),
                request=self.request,
                username=data.pop("username"),
                password=data.pop("password", None),
                roles=data.pop("roles", []),
                **data,
            )
        if not active:
            person_set_active(actor=acting_person(self.request), person=person, active=False, request=self.request)
        serializer.instance = person

    @transaction.atomic
    def perform_update(self, serializer: serializers.BaseSerializer[Person]) -> None:
        person = serializer.instance
        assert person is not None
        data = dict(serializer.validated_data)
        actor = acting_person(self.request)
        roles = data.pop("roles", None)
        active = data.pop("is_active", None)
        password = data.pop("password", None)
        person_update(actor=actor, person=person, request=self.request, **data)
        if roles is not None:
            person_set_roles(actor=actor, person=person, roles=roles, request=self.request)
        if active is not None:
            person_set_active(actor=actor, person=person, active=active, request=self.request)
        if password:
            with _password_refusals():
                person_set_password(actor=actor, person=person, password=password, request=self.request)


@contextmanager
def _password_refusals() -> Iterator[None]:
    """Django's password validators refuse a weak password: that is bad input on ``password``."""
    try:
        yield
    except DjangoValidationError as exc:
        raise serializers.ValidationError({"password": list(exc.messages)}) from exc


class RoleViewSet(viewsets.ModelViewSet[Role]):
    """Built-in roles are fixed; custom roles bundle any permissions."""

    access_policy = api_policy(write=Perm.MANAGE_PEOPLE)
    queryset = Role.objects.all()
    serializer_class = RoleSerializer
    keyset_ordering = ["name", "id"]
    filterset_fields = ["name", "is_builtin"]

    def perform_create(self, serializer: serializers.BaseSerializer[Role]) -> None:
        role = serializer.save(is_builtin=False)
        audit_record(
            verb="role.created",
            actor=acting_person(self.request),
            target=role,
            request=self.request,
            after={"name": role.name, "permissions": role.permissions},
        )

    def perform_update(self, serializer: serializers.BaseSerializer[Role]) -> None:
        role = serializer.instance
        assert role is not None
        if role.is_builtin:
            raise AccessError("Built-in roles cannot be changed.")
        before = {"name": role.name, "permissions": list(role.permissions)}
        role = serializer.save()
        audit_record(
            verb="role.updated",
            actor=acting_person(self.request),
            target=role,
            request=self.request,
            before=before,
            after={"name": role.name, "permissions": role.permissions},
        )

    def perform_destroy(self, instance: Role) -> None:
        if instance.is_builtin:
            raise AccessError("Built-in roles cannot be deleted.")
        audit_record(
            verb="role.deleted",
            actor=acting_person(self.request),
            target=instance,
            request=self.request,
            before={"name": instance.name, "permissions": instance.permissions},
        )
        instance.delete()


class ApiKeyViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet[ApiKey],
):
    """Your API keys (admins: everyone's). The key itself appears once, in the create response.

    ``DELETE`` and ``POST {id}/revoke/`` both revoke; the record stays for the audit trail.
    """

    access_policy = api_policy(write=Perm.VIEW)
    serializer_class = ApiKeySerializer
    filterset_class = ApiKeyFilterSet
    keyset_ordering = ["-created_at", "-id"]

    def get_queryset(self) -> QuerySet[ApiKey]:
        qs = ApiKey.objects.select_related("owner")
        if getattr(self, "swagger_fake_view", False):  # building the OpenAPI document
            return qs.none()
        if not acting_person(self.request).has_console_permission(Perm.MANAGE_PEOPLE):
            qs = qs.filter(owner=acting_person(self.request))
        return qs

    @extend_schema(responses={201: NewApiKeySerializer})
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = ApiKeySerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        created = api_key_create(
            actor=acting_person(request),
            owner=data.get("owner") or acting_person(request),
            name=data["name"],
            expires_at=data.get("expires_at"),
            request=request,
        )
        body = NewApiKeySerializer(created.key).data
        body["key"] = created.token
        response = Response(body, status=status.HTTP_201_CREATED)
        response["Cache-Control"] = "no-store"
        return response

    def perform_destroy(self, instance: ApiKey) -> None:
        api_key_revoke(actor=acting_person(self.request), key=instance, request=self.request)

    @extend_schema(request=None, responses={200: ApiKeySerializer})
    @action(detail=True, methods=["post"])
    def revoke(self, request: Request, pk: str | None = None) -> Response:
        key = api_key_revoke(actor=acting_person(request), key=self.get_object(), request=request)
        return Response(ApiKeySerializer(key).data)


class TeamViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """Teams. Admins set the roles any team grants, and make, fill and delete local teams.

    Teams SCIM manages keep their identity provider's name and members while SCIM
    provisioning is on: member changes and deletion are refused with the reason.
    """

    access_policy = api_policy(write=Perm.MANAGE_PEOPLE, members=Perm.VIEW)
    serializer_class = TeamSerializer
    filterset_class = TeamFilterSet
    keyset_ordering = ["name", "id"]
    keyset_table: Table | None = TEAMS_TABLE

    def get_queryset(self) -> QuerySet[Team]:
        return teams_sortable(Team.objects.prefetch_related("roles"))

    @extend_schema(request=TeamCreateSerializer, responses={201: TeamSerializer})
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = TeamCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        team = team_create(actor=acting_person(request), request=request, **serializer.validated_data)
        return Response(TeamSerializer(self.get_queryset().get(pk=team.pk)).data, status=status.HTTP_201_CREATED)

    def perform_destroy(self, instance: Team) -> None:
        team_delete(actor=acting_person(self.request), team=instance, request=self.request)

    def _change_members(self, request: Request, *, adding: bool) -> Response:
        team = self.get_object()
        body = TeamMembersChangeSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        people = body.validated_data["members"]
        team_members_change(
            actor=acting_person(request),
            team=team,
            add=people if adding else [],
            remove=[] if adding else people,
            request=request,
        )
        return Response(TeamSerializer(self.get_queryset().get(pk=team.pk)).data)

    @extend_schema(request=TeamMembersChangeSerializer, responses={200: TeamSerializer})
    @action(detail=True, methods=["post"], url_path="members/add", filterset_class=None)
    def add_members(self, request: Request, pk: str | None = None) -> Response:
        """Add people (by user name) to a local team."""
        return self._change_members(request, adding=True)

    @extend_schema(request=TeamMembersChangeSerializer, responses={200: TeamSerializer})
    @action(detail=True, methods=["post"], url_path="members/remove", filterset_class=None)
    def remove_members(self, request: Request, pk: str | None = None) -> Response:
        """Remove people (by user name) from a local team."""
        return self._change_members(request, adding=False)

    def perform_update(self, serializer: serializers.BaseSerializer[Team]) -> None:
        team = serializer.instance
        assert team is not None
        roles = serializer.validated_data.get("roles")
        if roles is None:
            return
        team_set_roles(actor=acting_person(self.request), team=team, roles=roles, request=self.request)

    def update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        response = super().update(request, *args, **kwargs)
        response.data = TeamSerializer(self.get_queryset().get(pk=kwargs["pk"])).data
        return response

    @action(detail=True, methods=["get"], serializer_class=TeamMemberSerializer, filterset_class=None)
    def members(self, request: Request, pk: str | None = None) -> Response:
        team = self.get_object()
        self.keyset_ordering = ["username", "id"]  # members page by user name, not by team name
        self.keyset_table = None
        page = self.paginate_queryset(Person.objects.filter(team_memberships__team=team))
        return self.get_paginated_response(TeamMemberSerializer(page, many=True).data)
