"""Team pages: the teams identity providers push (or admins keep), their members and the roles they grant."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from console.accounts.access import acting_person, requires
from console.accounts.filters import TeamFilterSet, TeamMemberFilterSet
from console.accounts.forms import TeamCreateForm, TeamMemberAddForm, TeamRolesForm
from console.accounts.models import Person, Team
from console.accounts.permissions import Perm
from console.accounts.services import (
    AccessError,
    scim_manages,
    team_create,
    team_delete,
    team_members_change,
    team_set_roles,
)
from console.accounts.tables import TEAMS_TABLE, teams_sortable
from console.audit.services import reason_recorded
from console.core.confirm import confirmation_page
from console.core.errors import InvalidInput
from console.core.feedback import error_shown
from console.core.lists import render_list
from console.core.tables import render_table


@requires(Perm.VIEW)
def team_list(request: HttpRequest) -> HttpResponseBase:
    viewer: Any = request.user
    return render_table(
        request,
        table=TEAMS_TABLE,
        template="accounts/team_list.html",
        queryset=teams_sortable(Team.objects.prefetch_related("roles")),
        filterset_class=TeamFilterSet,
        context={"can_manage": viewer.has_console_permission(Perm.MANAGE_PEOPLE)},
    )


@requires(Perm.MANAGE_PEOPLE, write=Perm.MANAGE_PEOPLE)
def team_create_view(request: HttpRequest) -> HttpResponse:
    """Make a local team; the teams an identity provider pushes arrive over SCIM."""
    form = TeamCreateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            team = team_create(actor=acting_person(request), request=request, **form.cleaned_data)
        except AccessError as exc:
            error_shown(request, exc, form)
        else:
            messages.success(request, f"Team {team.name} was created.")
            return redirect("team_detail", pk=team.pk)
    return render(request, "accounts/team_form.html", {"form": form})


@requires(Perm.VIEW)
def team_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """The team, the roles it grants, and its members one keyset page at a time."""
    team = get_object_or_404(Team.objects.prefetch_related("roles"), pk=pk)
    viewer: Any = request.user
    can_manage = viewer.has_console_permission(Perm.MANAGE_PEOPLE)
    managed = scim_manages(team)
    return render_list(
        request,
        template="accounts/team_detail.html",
        queryset=Person.objects.filter(team_memberships__team=team),
        filterset_class=TeamMemberFilterSet,
        ordering=["username", "id"],
        context={
            "team": team,
            "member_total": team.memberships.count(),
            "scim_managed": managed,
            "roles_form": TeamRolesForm(initial={"roles": team.roles.all()}) if can_manage else None,
            "can_change_members": can_manage and not managed,
            "breadcrumbs": [("Teams", reverse("team_list")), (team.name, None)],
        },
    )


@require_POST
@requires(Perm.MANAGE_PEOPLE, write=Perm.MANAGE_PEOPLE)
def team_members(request: HttpRequest, pk: int) -> HttpResponse:
    """Add a member (``username``) or remove one (``remove``: a person id)."""
    team = get_object_or_404(Team, pk=pk)
    actor = acting_person(request)
    try:
        if "remove" in request.POST:
            raw = request.POST["remove"]
            person = get_object_or_404(Person, pk=int(raw) if raw.isdecimal() else 0)
            _, removed = team_members_change(actor=actor, team=team, remove=[person], request=request)
            if removed:
                messages.success(request, f"{person.username} left {team.name}.")
            else:
                messages.info(request, f"{person.username} is not in {team.name}.")
        else:
            form = TeamMemberAddForm(request.POST)
            if form.is_valid():
                person = form.cleaned_data["username"]
                added, _ = team_members_change(actor=actor, team=team, add=[person], request=request)
                if added:
                    messages.success(request, f"{person.username} joined {team.name}.")
                else:
                    messages.info(request, f"{person.username} is already in {team.name}.")
            else:
                problems = form.errors.get("username", ["Give a user name."])
                error_shown(request, InvalidInput(" ".join(str(e) for e in problems), "username"))
    except AccessError as exc:
        error_shown(request, exc)
    return redirect("team_detail", pk=team.pk)


@require_POST
@requires(Perm.MANAGE_PEOPLE, write=Perm.MANAGE_PEOPLE)
def team_delete_view(request: HttpRequest, pk: int) -> HttpResponse:
    team = get_object_or_404(Team, pk=pk)
    if page := confirmation_page(request):
        return page
    try:
        with reason_recorded(request):
            team_delete(actor=acting_person(request), team=team, request=request)
    except AccessError as exc:
        error_shown(request, exc)
        return redirect("team_detail", pk=team.pk)
    messages.success(request, f"Team {team.name} was deleted.")
    return redirect("team_list")


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
            error_shown(request, exc)
    else:
        error_shown(request, InvalidInput("Choose roles from the list.", "roles"))
    return redirect("team_detail", pk=team.pk)
