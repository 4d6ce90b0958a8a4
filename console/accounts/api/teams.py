"""``/api/v1/teams/``: teams, their members (keyset pages) and the roles they grant."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from console.accounts.access import acting_person, api_policy
from console.accounts.api.serializers import (
    TeamCreateSerializer,
    TeamMembersChangeSerializer,
    TeamMemberSerializer,
    TeamSerializer,
)
from console.accounts.filters import TeamFilterSet
from console.accounts.models import Person, Team
from console.accounts.permissions import Perm
from console.accounts.services import (
    team_create,
    team_delete,
    team_members_change,
    team_set_roles,
)
from console.accounts.tables import TEAMS_TABLE, teams_sortable
from console.core.tables import Table


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
