"""Named places in console pages that apps above the console fill in.

``console`` must not import ``integrations`` or ``provisioning`` (dependencies point one
way), yet the dashboard shows integrations and a person's page shows their actions. So
those apps register a panel for a slot in their ``AppConfig.ready``; the page renders
whatever is registered with ``{% slot "dashboard.main" %}``.

Slots in use: ``dashboard.main``, ``settings.pipeline``, ``settings.sign_in``,
``person.detail``; and, filled by provisioning on integrations' pages,
``integration.detail``, ``integration.transformers``, ``integration.users``,
``integration.groups``, ``target_user.detail``, ``target_group.detail``, and ``person.account``
(a row of the person's accounts, which integrations shows on the person's page); and
``integration.tabs``, links an app adds to an integration's tabs (a panel that renders one
``<a>``, marked ``aria-current`` when the page's ``tab`` is its own); and, on reconciliation's Drift
tab, ``reconciliation.drift_actions``, what can be done with the drift (under its counts); and
``integration.health``, rows (a ``<dt>`` and its ``<dd>``) of an integration's Lifecycle health card.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.http import HttpRequest, HttpResponseBase

ContextFn = Callable[[HttpRequest, dict[str, Any]], dict[str, Any] | None]
RespondFn = Callable[[HttpRequest, dict[str, Any]], HttpResponseBase | None]


@dataclass(frozen=True)
class Panel:
    template: str
    context: ContextFn
    order: int = 100
    # A panel holding a table answers that table's own requests (its export, its htmx partial).
    respond: RespondFn | None = None


_registry: dict[str, list[Panel]] = defaultdict(list)


def register_panel(
    slot: str, *, template: str, context: ContextFn, order: int = 100, respond: RespondFn | None = None
) -> None:
    """Add a panel to ``slot``. ``context(request, page_context)`` returns ``None`` to hide it;
    ``respond(request, page_context)`` returns a response where the request is the panel's own
    (see :func:`slot_response`), else ``None``."""
    panels = _registry[slot]
    if not any(p.template == template for p in panels):
        panels.append(Panel(template=template, context=context, order=order, respond=respond))
        panels.sort(key=lambda p: p.order)


def panels_for(slot: str) -> list[Panel]:
    return list(_registry.get(slot, ()))


def slot_response(slot: str, request: HttpRequest, page: dict[str, Any]) -> HttpResponseBase | None:
    """The response of the first panel of ``slot`` that answers this request on its own (a
    table's export or its htmx partial), else ``None``: the page then renders in full."""
    for panel in panels_for(slot):
        if panel.respond is not None:
            answer = panel.respond(request, page)
            if answer is not None:
                return answer
    return None
