"""The shell: dashboard, health endpoints, the global search page and the settings page."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.templatetags.static import static
from django.views.decorators.cache import never_cache

from console.accounts.access import PUBLIC, acting_person, requires
from console.accounts.models import ApiKey, Person, Team
from console.accounts.permissions import Perm
from console.audit.models import AuditEvent
from console.core.models import ConsoleSettings
from console.core.search import DROPDOWN_LIMIT, PAGE_LIMIT, search, search_term
from console.web.forms import ConsoleSettingsForm
from console.web.health import readiness
from console.web.services import console_settings_update


@never_cache
@requires(PUBLIC)
def healthz(request: HttpRequest) -> HttpResponse:
    """The process is up. Checks nothing else, by design."""
    return JsonResponse({"status": "ok"})


@requires(PUBLIC)
def favicon(request: HttpRequest) -> HttpResponse:
    """``/favicon.ico``, which browsers and tools ask for without reading the page's ``<link rel="icon">``."""
    response = redirect(static("favicon.svg"))
    response["Cache-Control"] = "public, max-age=86400"
    return response


@never_cache
@requires(PUBLIC)
def readyz(request: HttpRequest) -> HttpResponse:
    """200 only when the database and the broker answer and a worker reported recently."""
    checks = readiness()
    ready = all(ok for ok, _ in checks.values())
    body = {
        "status": "ready" if ready else "not ready",
        "checks": {name: {"ok": ok, "detail": detail} for name, (ok, detail) in checks.items()},
        "failed": [name for name, (ok, _) in checks.items() if not ok],
    }
    return JsonResponse(body, status=200 if ready else 503)


@requires(Perm.VIEW)
def dashboard(request: HttpRequest) -> HttpResponse:
    context = {
        "people_active": Person.objects.filter(is_active=True).count(),
        "people_inactive": Person.objects.filter(is_active=False).count(),
        "teams": Team.objects.count(),
        "api_keys_active": ApiKey.objects.filter(revoked_at__isnull=True).count(),
        "recent_events": AuditEvent.objects.select_related(None)[:10],
        "readiness": readiness(),
    }
    return render(request, "web/dashboard.html", context)


@requires(Perm.VIEW, write=Perm.MANAGE_SETTINGS)
def settings_view(request: HttpRequest) -> HttpResponse:
    """Settings, in sections (Sign-in, Pipeline). Everyone may read; admins change them."""
    current = ConsoleSettings.load()
    can_edit = acting_person(request).has_console_permission(Perm.MANAGE_SETTINGS)
    form = ConsoleSettingsForm(request.POST or None, instance=ConsoleSettings.load())
    if not can_edit:
        for field in form.fields.values():
            field.disabled = True
    if request.method == "POST" and form.is_valid():
        console_settings_update(
            actor=acting_person(request),
            request=request,
            **{name: form.cleaned_data[name] for name in form.changed_data},
        )
        messages.success(request, "Settings saved.")
        return redirect("settings")
    return render(request, "web/settings.html", {"form": form, "settings": current, "can_edit": can_edit})


@requires(Perm.VIEW)
def search_view(request: HttpRequest) -> HttpResponse:
    """``/search/?q=``: the results page; as you type (htmx), only the dropdown."""
    term = search_term(request)
    dropdown = bool(getattr(request, "htmx", False)) and request.GET.get("part") == "suggestions"
    limit = DROPDOWN_LIMIT if dropdown else PAGE_LIMIT
    context = {"q": term, "groups": search(term, limit=limit), "limit": limit}
    if dropdown:
        return render(request, "web/search.html#suggestions", context)
    return render(request, "web/search.html", context)
