"""``/api/v1/teams/``: teams, their members (keyset pages) and the roles they grant."""

from __future__ import annotations

from typing import Any

from django.db.models import Count, QuerySet
from rest_framework import mixins, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from console.accounts.access import acting_person, api_policy
from console.accounts.filters import TeamFilterSet
from console.accounts.models import Person, Role, Team
from console.accounts.permissions import Perm
from console.accounts.services import AccessError, team_set_roles


class TeamSerializer(serializers.ModelSerializer[Team]):
    roles = serializers.SlugRelatedField(slug_field="name", many=True, queryset=Role.objects.all())
    member_count = serializers.IntegerField(read_only=True)

    class Meta:
        model = Team
        fields = ["id", "name", "external_id", "source", "roles", "member_count", "created_at", "updated_at"]
        read_only_fields = ["id", "name", "external_id", "source", "member_count", "created_at", "updated_at"]


class TeamMemberSerializer(serializers.ModelSerializer[Person]):
    active = serializers.BooleanField(source="is_active")

    class Meta:
        model = Person
        fields = ["id", "username", "display_name", "active"]


class TeamViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.UpdateModelMixin, viewsets.GenericViewSet):
    """Read teams; admins change only the roles a team grants (name and members come from the team's source)."""

    access_policy = api_policy(write=Perm.MANAGE_PEOPLE, members=Perm.VIEW)
    serializer_class = TeamSerializer
    filterset_class = TeamFilterSet
    keyset_ordering = ["name", "id"]

    def get_queryset(self) -> QuerySet[Team]:
        return Team.objects.annotate(member_count=Count("memberships")).prefetch_related("roles")

    def perform_update(self, serializer: serializers.BaseSerializer[Team]) -> None:
        team = serializer.instance
        assert team is not None
        roles = serializer.validated_data.get("roles")
        if roles is None:
            return
        try:
            team_set_roles(actor=acting_person(self.request), team=team, roles=roles, request=self.request)
        except AccessError as exc:
            raise serializers.ValidationError({"roles": [str(exc)]}) from exc

    def update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        response = super().update(request, *args, **kwargs)
        response.data = TeamSerializer(self.get_queryset().get(pk=kwargs["pk"])).data
        return response

    @action(detail=True, methods=["get"], serializer_class=TeamMemberSerializer, filterset_class=None)
    def members(self, request: Request, pk: str | None = None) -> Response:
        team = self.get_object()
        self.keyset_ordering = ["username", "id"]  # members page by user name, not by team name
        page = self.paginate_queryset(Person.objects.filter(team_memberships__team=team))
        return self.get_paginated_response(TeamMemberSerializer(page, many=True).data)
