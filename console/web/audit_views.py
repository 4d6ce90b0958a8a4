"""The Audit page (the log is kept by console.audit; its pages are the shell's), and the verbs its filter suggests."""

from __future__ import annotations

from dataclasses import replace

from django.http import HttpRequest, HttpResponseBase
from django.urls import reverse

from console.accounts.access import requires
from console.accounts.permissions import Perm
from console.audit.filters import AuditEventFilterSet
from console.audit.models import AuditEvent
from console.audit.tables import AUDIT_TABLE
from console.core.tables import SUGGESTIONS, render_table, suggestion_term, suggestions_response


@requires(Perm.VIEW)
def audit_list(request: HttpRequest) -> HttpResponseBase:
    table = replace(AUDIT_TABLE, suggest={"actor": reverse("person_suggest"), "verb": reverse("audit_verb_suggest")})
    return render_table(
        request,
        table=table,
        template="audit/audit_list.html",
        queryset=AuditEvent.objects.all(),
        filterset_class=AuditEventFilterSet,
        page_size=50,
    )


@requires(Perm.VIEW)
def audit_verb_suggest(request: HttpRequest) -> HttpResponseBase:
    """Verbs that begin with what was typed; a verb's prefix (``api_key.``) filters all it begins."""
    term = suggestion_term(request)
    # One index probe per distinct verb (a loose index scan), however long the log is.
    names: list[str] = []
    events = AuditEvent.objects.filter(verb__startswith=term).order_by("verb")
    while len(names) < SUGGESTIONS:
        after = events.filter(verb__gt=names[-1]) if names else events
        verb = after.values_list("verb", flat=True).first()
        if verb is None:
            break
        names.append(verb)
    prefixes = sorted({verb.split(".", 1)[0] + "." for verb in names if "." in verb})
    return suggestions_response([*[p for p in prefixes if p.startswith(term)], *names])
