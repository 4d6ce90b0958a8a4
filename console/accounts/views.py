"""Sign-in, people and API key pages."""

from __future__ import annotations

from dataclasses import replace
from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.forms import PasswordChangeForm
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse, reverse_lazy
from django.views.decorators.http import require_POST

from console.accounts import sign_in_views
from console.accounts.access import AUTHENTICATED, PUBLIC, AccessPolicy, acting_person, requires
from console.accounts.filters import ApiKeyFilterSet, PersonFilterSet
from console.accounts.forms import ApiKeyCreateForm, PersonCreateForm, PersonForm, PersonRolesForm, SignInForm
from console.accounts.models import ApiKey, Person, Team
from console.accounts.oidc import provider_sign_out_url
from console.accounts.permissions import Perm
from console.accounts.selectors import person_effective_roles_explained
from console.accounts.services import (
    SCIM_MANAGED_REASON,
    AccessError,
    ScimManagedError,
    api_key_create,
    api_key_revoke,
    person_create,
    person_set_active,
    person_set_roles,
    person_update,
    scim_manages,
)
from console.accounts.tables import PEOPLE_TABLE
from console.audit.models import AuditEvent
from console.audit.services import audit_record, reason_recorded
from console.core.confirm import confirmation_page
from console.core.crypto import decrypt, encrypt
from console.core.errors import InvalidInput
from console.core.feedback import error_shown
from console.core.lists import render_list
from console.core.models import ConsoleSettings
from console.core.slots import slot_response
from console.core.tables import SUGGESTIONS, render_table, suggestion_term, suggestions_response


class SignInView(auth_views.LoginView):
    """The provider's button first (where OpenID Connect is set up), then the password form.

    A right password may still not be enough: while only local admins may use one, anyone
    else is sent to the provider; with a second factor, the sign-in waits for its code.
    """

    access_policy = AccessPolicy(read=PUBLIC, write=PUBLIC)
    form_class = SignInForm
    template_name = "accounts/sign_in.html"
    redirect_authenticated_user = True

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context["provider"] = sign_in_views.oidc_offered(ConsoleSettings.load())
        return context

    def form_valid(self, form: SignInForm) -> HttpResponse:  # type: ignore[override]
        person = form.get_user()
        current = ConsoleSettings.load()
        if current.oidc_ready and current.password_sign_in_admins_only and not sign_in_views.is_local_admin(person):
            sign_in_views.sign_in_refused(
                self.request, username=person.username, reason="password sign-in is for local admins", method="local"
            )
            messages.info(self.request, f"Sign in through your identity provider ({current.oidc_button_label}).")
            return redirect(f"{reverse('oidc_start')}?{urlencode({'next': self.get_success_url()})}")
        if sign_in_views.second_factor_needed(person):
            return sign_in_views.second_factor_defer(self.request, person, next_url=self.get_success_url())
        sign_in_views.sign_in_complete(self.request, person, method="local")
        return redirect(self.get_success_url())


class SignOutView(auth_views.LogoutView):
    """Ends the console session; after a sign-in through the provider, offers to sign out there too."""

    access_policy = AccessPolicy(read=AUTHENTICATED, write=AUTHENTICATED)

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        provider_sign_out = provider_sign_out_url(request)  # read before the session ends
        response = super().post(request, *args, **kwargs)
        if provider_sign_out is None:
            return response
        label = ConsoleSettings.load().oidc_button_label
        return render(request, "accounts/signed_out.html", {"provider_sign_out": provider_sign_out, "label": label})


class PasswordChangeView(auth_views.PasswordChangeView):
    access_policy = AccessPolicy(read=AUTHENTICATED, write=AUTHENTICATED)
    form_class = PasswordChangeForm
    template_name = "accounts/password_change.html"
    success_url = reverse_lazy("password_change_done")

    def form_valid(self, form: PasswordChangeForm) -> HttpResponse:
        response = super().form_valid(form)
        person = acting_person(self.request)
        audit_record(verb="auth.password_changed", actor=person, target=person, request=self.request)
        return response


class PasswordChangeDoneView(auth_views.PasswordChangeDoneView):
    access_policy = AccessPolicy(read=AUTHENTICATED)
    template_name = "accounts/password_change_done.html"


@requires(Perm.VIEW)
def person_list(request: HttpRequest) -> HttpResponseBase:
    return render_table(
        request,
        table=replace(PEOPLE_TABLE, suggest={"team": reverse("team_suggest")}),
        template="accounts/person_list.html",
        queryset=Person.objects.all(),
        filterset_class=PersonFilterSet,
    )


@requires(Perm.VIEW)
def person_suggest(request: HttpRequest) -> HttpResponseBase:
    """User names that begin with what was typed (the index on upper(username) finds them)."""
    term = suggestion_term(request)
    people = Person.objects.filter(username__istartswith=term).order_by("username", "id")
    return suggestions_response(people.values_list("username", flat=True)[:SUGGESTIONS])


@requires(Perm.VIEW)
def team_suggest(request: HttpRequest) -> HttpResponseBase:
    """Team names that begin with what was typed."""
    term = suggestion_term(request)
    teams = Team.objects.filter(name__istartswith=term).order_by("name", "id")
    return suggestions_response(teams.values_list("name", flat=True)[:SUGGESTIONS])


@requires(Perm.VIEW)
def person_detail(request: HttpRequest, pk: int) -> HttpResponseBase:
    person = get_object_or_404(Person.objects.select_related("manager"), pk=pk)
    # A table another app shows here (the person's accounts) answers its export and its partial.
    answered = slot_response("person.detail", request, {"person": person})
    if answered is not None:
        return answered
    viewer: Any = request.user
    can_manage = viewer.has_console_permission(Perm.MANAGE_PEOPLE)
    managed = scim_manages(person)
    context = {
        "person": person,
        "scim_managed": managed,
        "identity_events": person.identity_events.all()[:20],
        "effective_roles": person_effective_roles_explained(person=person),
        "teams": person.teams.order_by("name"),
        "api_keys": person.api_keys.all() if can_manage or viewer.pk == person.pk else None,
        "events": AuditEvent.objects.filter(target_type="accounts.person", target_id=str(person.pk))[:20],
        "roles_form": PersonRolesForm(initial={"roles": person.roles.all()}) if can_manage and not managed else None,
        "breadcrumbs": [("People", reverse("person_list")), (person.username, None)],
    }
    return render(request, "accounts/person_detail.html", context)


@requires(Perm.MANAGE_PEOPLE, write=Perm.MANAGE_PEOPLE)
def person_create_view(request: HttpRequest) -> HttpResponse:
    form = PersonCreateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = dict(form.cleaned_data)
        try:
            person = person_create(
                actor=acting_person(request),
                request=request,
                username=data.pop("username"),
                password=data.pop("password"),
                roles=data.pop("roles"),
                **data,
            )
        except ValidationError as exc:
            form.add_error("password", exc)
        except AccessError as exc:
            error_shown(request, exc, form)
        else:
            messages.success(request, f"{person.username} was created.")
            return redirect("person_detail", pk=person.pk)
    return render(request, "accounts/person_form.html", {"form": form, "creating": True})


@requires(Perm.MANAGE_PEOPLE, write=Perm.MANAGE_PEOPLE)
def person_edit(request: HttpRequest, pk: int) -> HttpResponse:
    person = get_object_or_404(Person, pk=pk)
    if scim_manages(person):
        error_shown(request, ScimManagedError(SCIM_MANAGED_REASON.format(name=person.username)))
        return redirect("person_detail", pk=person.pk)
    form = PersonForm(request.POST or None, instance=Person.objects.get(pk=pk))
    if request.method == "POST" and form.is_valid():
        try:
            person_update(
                actor=acting_person(request),
                person=person,
                request=request,
                **{name: form.cleaned_data[name] for name in form.changed_data},
            )
        except AccessError as exc:
            error_shown(request, exc, form)
        else:
            messages.success(request, "Saved.")
            return redirect("person_detail", pk=person.pk)
    return render(request, "accounts/person_form.html", {"form": form, "person": person, "creating": False})


@require_POST
@requires(Perm.MANAGE_PEOPLE, write=Perm.MANAGE_PEOPLE)
def person_roles(request: HttpRequest, pk: int) -> HttpResponse:
    person = get_object_or_404(Person, pk=pk)
    form = PersonRolesForm(request.POST)
    if form.is_valid():
        try:
            person_set_roles(
                actor=acting_person(request), person=person, roles=form.cleaned_data["roles"], request=request
            )
            messages.success(request, "Roles saved.")
        except AccessError as exc:
            error_shown(request, exc)
    else:
        error_shown(request, InvalidInput("Choose roles from the list.", "roles"))
    return redirect("person_detail", pk=person.pk)


@require_POST
@requires(Perm.MANAGE_PEOPLE, write=Perm.MANAGE_PEOPLE)
def person_active(request: HttpRequest, pk: int) -> HttpResponse:
    person = get_object_or_404(Person, pk=pk)
    active = request.POST.get("active") == "true"
    try:
        person_set_active(actor=acting_person(request), person=person, active=active, request=request)
        messages.success(request, f"{person.username} is now {'active' if active else 'inactive'}.")
    except AccessError as exc:
        error_shown(request, exc)
    return redirect("person_detail", pk=person.pk)


NEW_KEY_SESSION_FIELD = "new_api_key"


@requires(Perm.VIEW, write=Perm.VIEW)
def api_key_list(request: HttpRequest) -> HttpResponse:
    """Your own keys; admins see everyone's. A new key is shown once, right here."""
    viewer: Any = request.user
    is_admin = viewer.has_console_permission(Perm.MANAGE_PEOPLE)
    # ?owner=<user name>, from a person's page: the key is for them (and the list shows theirs).
    initial = {"owner": request.GET.get("owner", "")} if is_admin else {}
    form = ApiKeyCreateForm(request.POST or None, can_choose_owner=is_admin, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            created = api_key_create(
                actor=viewer,
                owner=form.cleaned_data.get("owner") or viewer,
                name=form.cleaned_data["name"],
                expires_at=form.cleaned_data.get("expires_at"),
                request=request,
            )
        except AccessError as exc:
            error_shown(request, exc, form)
        else:
            # Post/Redirect/Get: the key rides in the session to exactly one page view,
            # so reloading neither shows it again nor makes a second key. Encrypted there,
            # like every secret at rest: the session store never holds it in the clear.
            request.session[NEW_KEY_SESSION_FIELD] = encrypt(created.token)
            return redirect("api_key_list")
    sealed = request.session.pop(NEW_KEY_SESSION_FIELD, None) if request.method == "GET" else None
    new_token = decrypt(sealed) if sealed else None
    keys = ApiKey.objects.select_related("owner")
    if not is_admin:
        keys = keys.filter(owner=viewer)
    response = render_list(
        request,
        template="accounts/api_key_list.html",
        queryset=keys,
        filterset_class=ApiKeyFilterSet,
        ordering=["-created_at", "-id"],
        context={"form": form, "new_token": new_token, "is_admin": is_admin},
    )
    response["Cache-Control"] = "no-store"  # the page may hold a new key
    return response


@require_POST
@requires(Perm.VIEW, write=Perm.VIEW)
def api_key_revoke_view(request: HttpRequest, pk: int) -> HttpResponse:
    viewer: Any = request.user
    is_admin = viewer.has_console_permission(Perm.MANAGE_PEOPLE)
    keys = ApiKey.objects.select_related("owner")
    if not is_admin:
        keys = keys.filter(owner=viewer)
    key = get_object_or_404(keys, pk=pk)
    if page := confirmation_page(request):
        return page
    try:
        with reason_recorded(request):
            api_key_revoke(actor=viewer, key=key, request=request)
    except AccessError as exc:
        error_shown(request, exc)
    else:
        messages.success(request, f"The key {key.name} ({key.prefix}…) is revoked.")
    if getattr(request, "htmx", False):
        return render(request, "accounts/api_key_list.html#row", {"key": key, "is_admin": is_admin})
    return redirect("api_key_list")
