"""Team pages: the teams identity providers push (or admins keep), their members and the roles they grant."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.db.models import Count
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.views.decorators.http import require_POST

from console.accounts.access import acting_person, requires
from console.accounts.filters import TeamFilterSet, TeamMemberFilterSet
from console.accounts.forms import TeamRolesForm
from console.accounts.models import Person, Team
from console.accounts.permissions import Perm
from console.accounts.services import AccessError, scim_manages, team_set_roles
from console.web.lists import render_list


@requires(Perm.VIEW)
def team_list(request: HttpRequest) -> HttpResponse:
    return render_list(
        request,
        template="accounts/team_list.html",
        queryset=Team.objects.annotate(member_count=Count("memberships")).prefetch_related("roles"),
        filterset_class=TeamFilterSet,
        ordering=["name", "id"],
    )


@requires(Perm.VIEW)
def team_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """The team, the roles it grants, and its members one keyset page at a time."""
    team = get_object_or_404(Team.objects.prefetch_related("roles"), pk=pk)
    viewer: Any = request.user
    can_manage = viewer.has_console_permission(Perm.MANAGE_PEOPLE)
    return render_list(
        request,
        template="accounts/team_detail.html",
        queryset=Person.objects.filter(team_memberships__team=team),
        filterset_class=TeamMemberFilterSet,
        ordering=["username", "id"],
        context={
            "team": team,
            "member_total": team.memberships.count(),
            "scim_managed": scim_manages(team),
            "roles_form": TeamRolesForm(initial={"roles": team.roles.all()}) if can_manage else None,
        },
    )


@require_POST
@requires(Perm.MANAGE_PEOPLE, write=Perm.MANAGE_PEOPLE)
def team_roles(request: HttpRequest, pk: int) -> HttpResponse:
    """Change the group-to-role mapping. It stays the console's own even for pushed teams."""
    team = get_object_or_404(Team, pk=pk)
    form = TeamRolesForm(request.POST)
    if form.is_valid():
        try:
            team_set_roles(actor=acting_person(request), team=team, roles=form.cleaned_data["roles"], request=request)
            messages.success(request, "Roles saved.")
        except AccessError as exc:
            messages.error(request, str(exc))
    else:
        messages.error(request, "Choose roles from the list.")
    return redirect("team_detail", pk=team.pk)
