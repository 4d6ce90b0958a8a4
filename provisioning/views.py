"""Action pages: the list (live), detail with timeline and call log, approvals inbox, and
the one form endpoint that requests an action from a person, account or group page."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from django import forms
from django.contrib import messages
from django.core.exceptions import NON_FIELD_ERRORS
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from console.accounts.access import acting_person, requires
from console.accounts.models import Person
from console.accounts.permissions import Perm
from console.core.confirm import confirmation_page, reason_of
from console.core.errors import ConsoleError, InvalidInput
from console.core.feedback import error_shown
from console.core.lists import render_list
from console.core.tables import render_table
from integrations.models import Integration
from provisioning.access_requests import (
    access_end_in_words,
    access_request_approve,
    access_request_cancel,
    access_request_create,
    access_request_end,
    access_request_extend,
    access_request_reject,
)
from provisioning.action_types.sync_identity import user_resource
from provisioning.batches import (
    actions_awaiting_decision,
    batch_approve,
    batch_progress,
    batch_reject,
    batch_rejection,
    batch_request,
    batch_undo,
    held_batches_awaiting_decision,
    mass_change_reason,
)
from provisioning.causes import AUTOMATION, cause_text, cause_view, requested_by_text
from provisioning.execution import integration_resume
from provisioning.exports import actions_export
from provisioning.filters import AccessRequestFilterSet, ActionFilterSet, RevocationFilterSet
from provisioning.forms import (
    AccessExtendForm,
    AccessRequestForm,
    ActionRequestForm,
    ApprovalPoliciesForm,
    BatchRequestForm,
    DecisionForm,
    TransformerForm,
    TransformerMoveForm,
)
from provisioning.models import AccessRequest, Action, ActionState, ActionType, AttributeTransformer, Batch, Revocation
from provisioning.planning import duration_estimate, plan_for, plan_for_action, requests_planned
from provisioning.services import (
    action_approve,
    action_cancel,
    action_reject,
    action_request,
    action_retry,
    approval_policy_set,
)
from provisioning.tables import ACTIONS_TABLE, REVOCATIONS_TABLE
from provisioning.transformers import (
    TransformerError,
    payload_for,
    transformer_add,
    transformer_delete,
    transformer_move,
)

LIVE_STATES = {ActionState.QUEUED, ActionState.RUNNING, ActionState.APPROVED}


def _live(items: list[Action]) -> bool:
    return any(item.state in LIVE_STATES for item in items)


@requires(Perm.VIEW)
def action_list(request: HttpRequest) -> HttpResponseBase:
    return render_table(
        request,
        table=replace(ACTIONS_TABLE, suggest={"person": reverse("person_suggest")}),
        template="provisioning/list.html",
        queryset=Action.objects.select_related("integration", "requested_by", "decided_by"),
        filterset_class=ActionFilterSet,
        context={"live_states": LIVE_STATES},
    )


@requires(Perm.VIEW)
def revocation_list(request: HttpRequest) -> HttpResponseBase:
    """Each deprovision's read-back: verified, mismatch or could not verify, and how long it took."""
    return render_table(
        request,
        table=replace(REVOCATIONS_TABLE, suggest={"person": reverse("person_suggest")}),
        template="provisioning/revocations.html",
        queryset=Revocation.objects.select_related("integration", "person"),
        filterset_class=RevocationFilterSet,
    )


@requires(Perm.APPROVE)
def approval_inbox(request: HttpRequest) -> HttpResponse:
    """Single actions waiting for a decision, and held batches as one row each (on the first page)."""
    access = AccessRequest.objects.filter(state=AccessRequest.State.PENDING).select_related(
        "target_user", "target_group", "integration", "requested_by"
    )
    row = request.GET.get("row", "")
    if getattr(request, "htmx", False) and row.isdecimal():  # a decided row following its action
        action = get_object_or_404(Action.objects.select_related("integration", "requested_by"), pk=int(row))
        return render(request, "provisioning/approvals.html#action_row", {"action": action, "live": LIVE_STATES})
    first_page = not request.GET.get("cursor")
    return render_list(
        request,
        template="provisioning/approvals.html",
        queryset=actions_awaiting_decision().select_related("integration", "requested_by"),
        filterset_class=ActionFilterSet,
        ordering=["created_at", "id"],
        context={
            "access_requests": access.order_by("created_at", "id")[:100],
            "held_batches": list(held_batches_awaiting_decision()) if first_page else [],
        },
    )


def _from_inbox(request: HttpRequest) -> bool:
    return request.POST.get("from") == "inbox"


def _decided_in_inbox(
    request: HttpRequest, move: Any, success: str, *, row: str, name: str, item: Any, reload: Any, **extra: Any
) -> HttpResponse:
    """A decision made on an inbox row: htmx gets the row back (decided, or with the reason it
    was refused); without JavaScript, the inbox again with a message."""
    refused: ConsoleError | None = None
    notice = ""
    try:
        result = move(actor=acting_person(request), request=request, **{name: item}, **extra)
    except ConsoleError as exc:
        refused = exc
    else:
        notice = success.format(count=result) if isinstance(result, int) else success
    if not getattr(request, "htmx", False):
        if refused is not None:
            error_shown(request, refused)
        else:
            messages.success(request, notice)
        return redirect("approval_inbox")
    # The row is swapped in place: the reason it was refused is shown in it, where the admin clicked.
    error = refused.message if refused is not None else ""
    context = {name: reload(item.pk), "error": error, "notice": notice, "live": LIVE_STATES}
    response = render(request, f"provisioning/approvals.html#{row}", context)
    response.write(render_to_string("provisioning/approvals_count_oob.html", request=request))
    return response


@requires(Perm.VIEW)
def action_detail(request: HttpRequest, pk: int) -> HttpResponse:
    action = get_object_or_404(
        Action.objects.select_related(
            "integration", "requested_by", "decided_by", "person", "target_user", "cause_event__person"
        ),
        pk=pk,
    )
    context: dict[str, Any] = {
        "action": action,
        "requested_by": requested_by_text(action),
        "cause": cause_view(action),
        "events": action.events.select_related("actor"),
        "calls": action.calls.all(),
        "live": action.state in LIVE_STATES,
        "is_requester": action.requested_by_id == request.user.pk,
        "plan": plan_for_action(action) if action.state == ActionState.PENDING_APPROVAL else None,
        "breadcrumbs": [("Actions", reverse("action_list")), (f"Action {action.pk}", None)],
    }
    if getattr(request, "htmx", False) and request.GET.get("part") == "status":
        response = render(request, "provisioning/detail.html#status", context)
        if not context["live"]:
            response["HX-Refresh"] = "true"  # finished: show the whole page, timeline and calls included
        return response
    return render(request, "provisioning/detail.html", context)


def _moved(request: HttpRequest, move: Any, success: str, then: HttpResponse, **kwargs: Any) -> HttpResponse:
    """Carry out a state change and say how it went; ``then`` is where the person goes next."""
    try:
        move(actor=acting_person(request), request=request, **kwargs)
    except ConsoleError as exc:
        error_shown(request, exc)
    else:
        messages.success(request, success)
    return then


def _move(request: HttpRequest, pk: int, move: Any, success: str, **extra: Any) -> HttpResponse:
    action = get_object_or_404(Action, pk=pk)
    if _from_inbox(request):
        reload = Action.objects.select_related("integration", "requested_by").get
        return _decided_in_inbox(
            request,
            move,
            success,
            row="action_row",
            name="action",
            item=action,
            reload=lambda pk: reload(pk=pk),
            **extra,
        )
    return _moved(request, move, success, redirect("action_detail", pk=pk), action=action, **extra)


@require_POST
@requires(Perm.APPROVE, write=Perm.APPROVE)
def action_approve_view(request: HttpRequest, pk: int) -> HttpResponse:
    if page := confirmation_page(request):
        return page
    return _move(request, pk, action_approve, "Approved: the action is queued.", comment=_comment(request))


@require_POST
@requires(Perm.APPROVE, write=Perm.APPROVE)
def action_reject_view(request: HttpRequest, pk: int) -> HttpResponse:
    return _move(request, pk, action_reject, "Rejected.", comment=_comment(request))


@require_POST
@requires(Perm.REQUEST_ACTIONS, write=Perm.REQUEST_ACTIONS)
def action_cancel_view(request: HttpRequest, pk: int) -> HttpResponse:
    return _move(request, pk, action_cancel, "Cancelled.")


@require_POST
@requires(Perm.REQUEST_ACTIONS, write=Perm.REQUEST_ACTIONS)
def action_retry_view(request: HttpRequest, pk: int) -> HttpResponse:
    return _move(request, pk, action_retry, "Queued again.")


def _back(request: HttpRequest) -> HttpResponse:
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        return redirect(target)
    return redirect("action_list")


def _comment(request: HttpRequest) -> str:
    form = DecisionForm(request.POST)
    return str(form.cleaned_data["comment"]) if form.is_valid() else ""


def _invalid(request: HttpRequest, form: forms.Form) -> None:
    """A form posted from another page is not shown again: its first error goes on the page instead."""
    field, errors = next(iter(form.errors.items()))
    error_shown(request, InvalidInput(str(errors[0]), None if field == NON_FIELD_ERRORS else field))


@require_POST
@requires(Perm.REQUEST_ACTIONS, write=Perm.REQUEST_ACTIONS)
def action_request_view(request: HttpRequest) -> HttpResponse:
    """Request an action from a form on a person, account or group page."""
    # A change of members touches each account named: the confirmation counts them.
    if page := confirmation_page(request, count=ActionRequestForm.members_named(request.POST)):
        return page
    form = ActionRequestForm(request.POST)
    if not form.is_valid():
        _invalid(request, form)
        return _back(request)
    data = form.cleaned_data
    try:
        action = action_request(
            actor=acting_person(request),
            integration=data["integration"],
            action_type=data["action_type"],
            person=data["person"],
            target_user=data["target_user"],
            target_group=data["target_group"],
            parameters=form.parameters(),
            request=request,
            reason=reason_of(request),
        )
    except ConsoleError as exc:
        error_shown(request, exc)
        return _back(request)
    if action.state == ActionState.PENDING_APPROVAL:
        messages.success(request, f"Requested: {action}. It waits for an approver.")
    else:
        messages.success(request, f"Queued: {action}.")
    return redirect("action_detail", pk=action.pk)


@require_POST
@requires(Perm.MANAGE_INTEGRATIONS, write=Perm.MANAGE_INTEGRATIONS)
def integration_resume_view(request: HttpRequest, pk: int) -> HttpResponse:
    """Lift an integration's quarantine; its waiting actions are queued again."""
    integration = get_object_or_404(Integration, pk=pk)
    queued = integration_resume(actor=acting_person(request), integration=integration, request=request)
    messages.success(request, f"{integration.name} resumed; {queued} waiting actions queued again.")
    return redirect("integration_detail", pk=pk)


def _label(action_type: str) -> str:
    """An action type in words ("Deprovision identity"), or as given when it is not one."""
    return ActionType(action_type).label if action_type in ActionType.values else action_type


@require_POST
@requires(Perm.REQUEST_ACTIONS, write=Perm.REQUEST_ACTIONS)
def batch_request_view(request: HttpRequest) -> HttpResponse:
    """Bulk: one action per selected account, in one batch; or only the plan (dry run)."""
    form = BatchRequestForm(request.POST)
    if not form.is_valid():
        _invalid(request, form)
        return _back(request)
    integration, action_type, targets = (form.cleaned_data[k] for k in ("integration", "action_type", "targets"))
    if form.cleaned_data["dry_run"]:
        try:
            plans = [
                (target, plan_for(integration=integration, action_type=action_type, target_user=target))
                for target in targets
            ]
        except ConsoleError as exc:
            error_shown(request, exc)
            return _back(request)
        hold = mass_change_reason(integration, action_type, len(targets))
        estimate = duration_estimate(integration=integration, requests=requests_planned(steps for _, steps in plans))
        return render(
            request,
            "provisioning/plan.html",
            {
                "integration": integration,
                "plans": plans,
                "hold": hold,
                "action_type": action_type,
                "targets": targets,
                "estimate": estimate,
                "action_label": _label(action_type),
            },
        )
    text = f"Requests “{_label(action_type)}” for each selected account in {integration.name}, as one batch."
    if page := confirmation_page(request, count=len(targets), text=text):
        return page
    try:
        batch = batch_request(
            actor=acting_person(request),
            integration=integration,
            action_type=action_type,
            target_users=targets,
            request=request,
            reason=reason_of(request),
        )
    except ConsoleError as exc:
        error_shown(request, exc)
        return _back(request)
    if batch.held_reason:
        messages.warning(request, f"Held for approval: {batch.held_reason}.")
    else:
        messages.success(request, f"{batch.actions.count()} actions requested.")
    return redirect("batch_detail", pk=batch.pk)


@requires(Perm.VIEW)
def batch_detail(request: HttpRequest, pk: int) -> HttpResponse:
    batch = get_object_or_404(Batch.objects.select_related("integration", "requested_by", "undo_of"), pk=pk)
    progress = batch_progress(batch)
    actions = list(batch.actions.select_related("target_user", "target_group").order_by("id"))
    pending = [a for a in actions if a.state == ActionState.PENDING_APPROVAL]
    causes = [text for text in (cause_text(a) for a in actions) if text]
    automated = batch.requested_by_id is None and any((a.cause or {}).get("policy") for a in actions)
    plan_id = next((a.cause["plan"] for a in actions if isinstance((a.cause or {}).get("plan"), int)), None)
    context = {
        "batch": batch,
        "requested_by": batch.requested_by.username if batch.requested_by else (AUTOMATION if automated else "system"),
        "causes": causes,
        "progress": progress,
        "progress_counted": [(state, count) for state, count in progress["by_state"].items() if count],
        "actions": actions,
        "plans": [(a, plan_for_action(a)) for a in pending[:200]],
        "pending": len(pending),
        "undoable": progress["done"] and any(a.state == ActionState.SUCCEEDED for a in actions),
        "is_requester": batch.requested_by_id == request.user.pk,
        "undone_by": batch.undone_by.order_by("-id").first(),
        "rejection": batch_rejection(batch),
        # A drift plan's batch links back to its plan (reconciliation's page, by its URL name).
        "plan_id": plan_id,
        "plan_url": reverse("plan_detail", args=[batch.integration_id, plan_id]) if plan_id else "",
        "breadcrumbs": [("Actions", reverse("action_list")), (f"Batch {batch.pk}", None)],
    }
    if getattr(request, "htmx", False) and request.GET.get("part") == "progress":
        return render(request, "provisioning/batch.html#progress", context)
    return render(request, "provisioning/batch.html", context)


def _batch_move(request: HttpRequest, pk: int, move: Any, success: str, **extra: Any) -> HttpResponse:
    batch = get_object_or_404(Batch, pk=pk)
    if _from_inbox(request):
        return _decided_in_inbox(
            request,
            move,
            success,
            row="batch_row",
            name="batch",
            item=batch,
            reload=lambda pk: held_batches_awaiting_decision(only_pending=False).get(pk=pk),
            **extra,
        )
    try:
        result = move(actor=acting_person(request), batch=batch, request=request, **extra)
    except ConsoleError as exc:
        error_shown(request, exc)
        return redirect("batch_detail", pk=pk)
    if isinstance(result, Batch):
        messages.success(request, success)
        return redirect("batch_detail", pk=result.pk)
    messages.success(request, success.format(count=result))
    return redirect("batch_detail", pk=pk)


@require_POST
@requires(Perm.APPROVE, write=Perm.APPROVE)
def batch_approve_view(request: HttpRequest, pk: int) -> HttpResponse:
    if page := confirmation_page(request):
        return page
    return _batch_move(request, pk, batch_approve, "Approved {count} actions.", comment=_comment(request))


@require_POST
@requires(Perm.APPROVE, write=Perm.APPROVE)
def batch_reject_view(request: HttpRequest, pk: int) -> HttpResponse:
    return _batch_move(request, pk, batch_reject, "Rejected {count} actions.", comment=_comment(request))


@require_POST
@requires(Perm.REQUEST_ACTIONS, write=Perm.REQUEST_ACTIONS)
def batch_undo_view(request: HttpRequest, pk: int) -> HttpResponse:
    if page := confirmation_page(request):
        return page
    return _batch_move(
        request, pk, batch_undo, "Undo requested: the inverse actions are in this batch.", reason=reason_of(request)
    )


@requires(Perm.VIEW)
def access_request_list(request: HttpRequest) -> HttpResponse:
    return render_list(
        request,
        template="provisioning/access_requests.html",
        queryset=AccessRequest.objects.select_related("target_user", "target_group", "integration", "requested_by"),
        filterset_class=AccessRequestFilterSet,
        ordering=["-created_at", "-id"],
    )


@requires(Perm.VIEW)
def access_request_detail(request: HttpRequest, pk: int) -> HttpResponse:
    return _access_page(request, pk)


def _access_page(request: HttpRequest, pk: int, extend_form: AccessExtendForm | None = None) -> HttpResponse:
    """The request's page; with ``extend_form``, that form again with what is wrong beside its field."""
    access = get_object_or_404(
        AccessRequest.objects.select_related(
            "target_user", "target_group", "integration", "requested_by", "action", "ended_by", "end_action"
        ),
        pk=pk,
    )
    return render(
        request,
        "provisioning/access_request.html",
        {
            "access": access,
            "is_requester": access.requested_by_id == request.user.pk,
            "end_words": access_end_in_words(access),
            "extend_form": extend_form or AccessExtendForm(),
        },
        status=400 if extend_form is not None else 200,
    )


@require_POST
@requires(Perm.REQUEST_ACTIONS, write=Perm.REQUEST_ACTIONS)
def access_request_create_view(request: HttpRequest) -> HttpResponse:
    """Ask for access; what is wrong is shown beside its field, on the request's own form page."""
    form = AccessRequestForm(request.POST)
    if not form.is_valid() and "target_group" in form.errors:
        _invalid(request, form)
        return _back(request)
    group = form.cleaned_data["target_group"]  # before a refusal on the group takes it out
    if form.is_valid():
        data = form.cleaned_data
        try:
            access = access_request_create(
                actor=acting_person(request),
                target_user=data["target_user"],
                target_group=data["target_group"],
                operation=data["operation"],
                justification=data["justification"],
                ends_at=data["ends_at"],
                request=request,
            )
        except ConsoleError as exc:
            error_shown(request, exc, form)
        else:
            messages.success(request, "Requested. An approver will decide.")
            return redirect("access_request_detail", pk=access.pk)
    context = {"form": form, "group": group, "integration": group.integration, "back": _back(request)["Location"]}
    return render(request, "provisioning/access_request_form.html", context, status=400)


def _access_move(request: HttpRequest, pk: int, move: Any, success: str, **extra: Any) -> HttpResponse:
    access = get_object_or_404(AccessRequest, pk=pk)
    return _moved(request, move, success, redirect("access_request_detail", pk=pk), access=access, **extra)


@require_POST
@requires(Perm.APPROVE, write=Perm.APPROVE)
def access_request_approve_view(request: HttpRequest, pk: int) -> HttpResponse:
    if page := confirmation_page(request):
        return page
    comment = _comment(request)
    return _access_move(request, pk, access_request_approve, "Approved: the change is queued.", comment=comment)


@require_POST
@requires(Perm.APPROVE, write=Perm.APPROVE)
def access_request_reject_view(request: HttpRequest, pk: int) -> HttpResponse:
    return _access_move(request, pk, access_request_reject, "Rejected.", comment=_comment(request))


@require_POST
@requires(Perm.REQUEST_ACTIONS, write=Perm.REQUEST_ACTIONS)
def access_request_cancel_view(request: HttpRequest, pk: int) -> HttpResponse:
    return _access_move(request, pk, access_request_cancel, "Cancelled.")


@require_POST
@requires(Perm.APPROVE, write=Perm.APPROVE)
def access_request_end_view(request: HttpRequest, pk: int) -> HttpResponse:
    if page := confirmation_page(request):
        return page
    return _access_move(
        request, pk, access_request_end, "Access ended: the removal is requested.", reason=reason_of(request)
    )


@require_POST
@requires(Perm.APPROVE, write=Perm.APPROVE)
def access_request_extend_view(request: HttpRequest, pk: int) -> HttpResponse:
    """Move the end later; a bad date is shown beside the field on the request's page."""
    form = AccessExtendForm(request.POST)
    if form.is_valid():
        access = get_object_or_404(AccessRequest, pk=pk)
        try:
            access_request_extend(
                actor=acting_person(request), access=access, ends_at=form.cleaned_data["ends_at"], request=request
            )
        except ConsoleError as exc:
            error_shown(request, exc, form)
        else:
            messages.success(request, "Extended.")
            return redirect("access_request_detail", pk=pk)
    return _access_page(request, pk, extend_form=form)


@require_POST
@requires(Perm.MANAGE_INTEGRATIONS, write=Perm.MANAGE_INTEGRATIONS)
def transformer_add_view(request: HttpRequest, pk: int) -> HttpResponse:
    integration = get_object_or_404(Integration, pk=pk)
    form = TransformerForm(request.POST)
    form.is_valid()  # every field is optional text: the service says what is wrong
    try:
        transformer_add(actor=acting_person(request), integration=integration, request=request, **form.cleaned_data)
    except ConsoleError as exc:
        error_shown(request, exc)
    else:
        messages.success(request, "Transformer added.")
    return redirect(reverse("integration_provisioning", args=[pk]) + "#transformers")


@require_POST
@requires(Perm.MANAGE_INTEGRATIONS, write=Perm.MANAGE_INTEGRATIONS)
def transformer_delete_view(request: HttpRequest, pk: int, transformer_pk: int) -> HttpResponse:
    row = get_object_or_404(AttributeTransformer, pk=transformer_pk, integration_id=pk)
    transformer_delete(actor=acting_person(request), transformer=row, request=request)
    messages.success(request, "Transformer removed.")
    return redirect(reverse("integration_provisioning", args=[pk]) + "#transformers")


@require_POST
@requires(Perm.MANAGE_INTEGRATIONS, write=Perm.MANAGE_INTEGRATIONS)
def transformer_move_view(request: HttpRequest, pk: int, transformer_pk: int) -> HttpResponse:
    """Move a row one place up or down."""
    row = get_object_or_404(AttributeTransformer, pk=transformer_pk, integration_id=pk)
    form = TransformerMoveForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose up or down.")
        return redirect(reverse("integration_provisioning", args=[pk]) + "#transformers")
    order = list(AttributeTransformer.objects.filter(integration_id=pk).values_list("pk", flat=True))
    try:
        transformer_move(
            actor=acting_person(request), transformer=row, position=order.index(row.pk) + 1 + form.step, request=request
        )
    except ConsoleError as exc:
        error_shown(request, exc)
    return redirect(reverse("integration_provisioning", args=[pk]) + "#transformers")


@requires(Perm.VIEW)
def transformer_preview_view(request: HttpRequest, pk: int) -> HttpResponse:
    """The exact SCIM user that would be sent for the chosen person."""
    integration = get_object_or_404(Integration, pk=pk)
    name = request.GET.get("person", "").strip()
    person = Person.objects.filter(username__iexact=name).first()
    context: dict[str, Any] = {"integration": integration, "person_name": name}
    if person is None:
        context["error"] = f"No person named {name!r}."
    else:
        try:
            context["payload"] = json.dumps(user_resource(payload_for(person, integration)), indent=2)
        except TransformerError as exc:
            context["error"] = str(exc)
    template = "provisioning/transformer_preview.html"
    return render(request, f"{template}#result" if getattr(request, "htmx", False) else template, context)


@require_POST
@requires(Perm.MANAGE_INTEGRATIONS, write=Perm.MANAGE_INTEGRATIONS)
def approval_policies_view(request: HttpRequest, pk: int) -> HttpResponse:
    """Save, for each action type, whether it runs at once or waits for an approver."""
    integration = get_object_or_404(Integration, pk=pk)
    form = ApprovalPoliciesForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose, for each action type, whether it runs at once or waits for an approver.")
        return redirect(reverse("integration_provisioning", args=[pk]) + "#approval-policies")
    for action_type, requires_approval in form.chosen().items():
        approval_policy_set(
            actor=acting_person(request),
            integration=integration,
            action_type=action_type,
            requires_approval=requires_approval,
            request=request,
        )
    messages.success(request, "Approval policies saved.")
    return redirect(reverse("integration_provisioning", args=[pk]) + "#approval-policies")


@requires(Perm.VIEW)
def action_export_view(request: HttpRequest) -> HttpResponseBase:
    """The Actions list, filtered as on the page, as CSV (``?as=csv``) or JSON (``?as=json``)."""
    filterset = ActionFilterSet(request.GET or None, queryset=Action.objects.all(), request=request)
    actions = filterset.qs if not filterset.is_bound or filterset.is_valid() else Action.objects.none()
    sort_name, ordering = ACTIONS_TABLE.keyset_ordering(request.GET.get("ordering"))
    return actions_export(ACTIONS_TABLE.sortable(actions, sort_name), request.GET.get("as", "csv"), ordering)
