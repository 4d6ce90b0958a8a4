"""``/api/v1/actions/``: request, read, approve, reject, cancel and retry actions."""

from __future__ import annotations

from typing import Any

from django.http import HttpResponseBase
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.generics import ListAPIView
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from console.accounts.access import acting_person, api_policy
from console.accounts.models import Person
from console.accounts.permissions import Perm
from console.core.errors import InvalidInput
from integrations.models import Integration
from provisioning.access_requests import (
    access_request_approve,
    access_request_cancel,
    access_request_create,
    access_request_end,
    access_request_extend,
    access_request_reject,
)
from provisioning.action_types.sync_identity import user_resource
from provisioning.api.serializers import (
    AccessEndSerializer,
    AccessExtendSerializer,
    AccessRequestSerializer,
    ActionDetailSerializer,
    ActionSerializer,
    ApprovalPolicyItemSerializer,
    AttributeTransformerMoveSerializer,
    AttributeTransformerSerializer,
    BatchSerializer,
    DecisionSerializer,
    RevocationLatencySerializer,
    RevocationSerializer,
)
from provisioning.batches import batch_approve, batch_reject, batch_request, batch_undo, mass_change_reason
from provisioning.execution import integration_resume
from provisioning.exports import actions_export
from provisioning.filters import ActionFilterSet
from provisioning.models import AccessRequest, Action, AttributeTransformer, Batch, Revocation
from provisioning.planning import duration_estimate, plan_for, requests_planned
from provisioning.revocations import revocation_latency, revocations_of_person
from provisioning.services import (
    action_approve,
    action_cancel,
    action_reject,
    action_request,
    action_retry,
    approval_policies_of,
    approval_policy_set,
)
from provisioning.tables import ACTIONS_TABLE, REVOCATIONS_TABLE
from provisioning.transformers import payload_for, transformer_add, transformer_delete, transformer_move


def _comment(request: Request) -> str:
    decision = DecisionSerializer(data=request.data)
    decision.is_valid(raise_exception=True)
    return str(decision.validated_data["comment"])


def _moved(request: Request, move: Any, serializer: Any, **kwargs: Any) -> Response:
    """Carry out a state change; a refused one answers as the console's errors do (409, or 400 on a field)."""
    result = move(actor=acting_person(request), request=request, **kwargs)
    return Response(serializer(result).data)


class ActionViewSet(mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet[Action]):
    """Actions, newest first. Creating one requests it; approval, if its policy asks, comes next."""

    access_policy = api_policy(
        create=Perm.REQUEST_ACTIONS,
        approve=Perm.APPROVE,
        reject=Perm.APPROVE,
        cancel=Perm.REQUEST_ACTIONS,
        retry=Perm.REQUEST_ACTIONS,
    )
    queryset = Action.objects.select_related("integration", "requested_by", "decided_by").all()
    serializer_class = ActionSerializer
    filterset_class = ActionFilterSet
    keyset_ordering = ["-created_at", "-id"]
    keyset_table = ACTIONS_TABLE

    def get_serializer_class(self) -> type[serializers.BaseSerializer[Action]]:
        return ActionDetailSerializer if self.action == "retrieve" else ActionSerializer

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = ActionSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        bulk = data.get("target_users") or data.get("people")
        if data.get("dry_run"):
            return self._plan(data)
        if bulk:
            batch = batch_request(
                actor=acting_person(request),
                integration=data["integration"],
                action_type=data["action_type"],
                target_users=data.get("target_users"),
                people=data.get("people"),
                request=request,
                reason=data.get("reason", ""),
            )
            return Response(BatchSerializer(batch).data, status=status.HTTP_201_CREATED)
        created = action_request(
            actor=acting_person(request),
            integration=data["integration"],
            action_type=data["action_type"],
            person=data.get("person"),
            target_user=data.get("target_user"),
            target_group=data.get("target_group"),
            parameters=data.get("parameters") or {},
            request=request,
            reason=data.get("reason", ""),
        )
        return Response(ActionSerializer(created).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        parameters=[OpenApiParameter("as", str, enum=["csv", "json"], description="The file's format")],
        responses={200: OpenApiResponse(description="A CSV or JSON file of the filtered actions")},
    )
    @action(detail=False, methods=["get"])
    def export(self, request: Request) -> HttpResponseBase:
        """Every action the filters select (not one page), streamed as CSV or JSON."""
        try:
            ordering = ACTIONS_TABLE.api_ordering(request.query_params.get("ordering"))
        except ValueError as exc:
            raise ValidationError({"ordering": [str(exc)]}) from exc
        actions = ACTIONS_TABLE.sortable(
            self.filter_queryset(self.get_queryset()), request.query_params.get("ordering")
        )
        return actions_export(actions, request.query_params.get("as", "csv"), ordering)

    def _plan(self, data: dict[str, Any]) -> Response:
        """A dry run: the requests each action would send. Nothing is created."""
        targets: list[dict[str, Any]] = [{"target_user": u} for u in data.get("target_users") or []]
        targets += [{"person": p} for p in data.get("people") or []]
        if not targets:
            targets = [
                {
                    "person": data.get("person"),
                    "target_user": data.get("target_user"),
                    "target_group": data.get("target_group"),
                }
            ]
        plans = []
        requests = 0
        for target in targets:
            steps = plan_for(
                integration=data["integration"],
                action_type=data["action_type"],
                parameters=data.get("parameters") or {},
                **target,
            )
            subject = target.get("target_user") or target.get("person") or target.get("target_group")
            requests += requests_planned([steps])
            plans.append({"subject": str(subject or ""), "requests": [step.as_dict() for step in steps]})
        hold = mass_change_reason(data["integration"], data["action_type"], len(targets))
        estimate = duration_estimate(integration=data["integration"], requests=requests)
        return Response({"dry_run": True, "held_for_approval": hold, "plans": plans, "estimate": estimate.as_dict()})

    @extend_schema(request=DecisionSerializer, responses={200: ActionSerializer})
    @action(detail=True, methods=["post"])
    def approve(self, request: Request, pk: str | None = None) -> Response:
        target = get_object_or_404(Action, pk=pk)
        return _moved(request, action_approve, ActionSerializer, action=target, comment=_comment(request))

    @extend_schema(request=DecisionSerializer, responses={200: ActionSerializer})
    @action(detail=True, methods=["post"])
    def reject(self, request: Request, pk: str | None = None) -> Response:
        target = get_object_or_404(Action, pk=pk)
        return _moved(request, action_reject, ActionSerializer, action=target, comment=_comment(request))

    @extend_schema(request=None, responses={200: ActionSerializer})
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: str | None = None) -> Response:
        return _moved(request, action_cancel, ActionSerializer, action=get_object_or_404(Action, pk=pk))

    @extend_schema(request=None, responses={200: ActionSerializer})
    @action(detail=True, methods=["post"])
    def retry(self, request: Request, pk: str | None = None) -> Response:
        return _moved(request, action_retry, ActionSerializer, action=get_object_or_404(Action, pk=pk))


class IntegrationResumeView(APIView):
    """``POST /api/v1/integrations/{id}/resume/``: lift the quarantine, queue what waited."""

    access_policy = api_policy(write=Perm.MANAGE_INTEGRATIONS)

    @extend_schema(request=None, responses={200: OpenApiResponse(description="{queued: n}")})
    def post(self, request: Request, pk: int) -> Response:
        integration = get_object_or_404(Integration, pk=pk)
        queued = integration_resume(actor=acting_person(request), integration=integration, request=request)
        return Response({"queued": queued})


class BatchViewSet(viewsets.ReadOnlyModelViewSet[Batch]):
    """Batches of bulk actions: progress, one decision for all, undo."""

    access_policy = api_policy(approve=Perm.APPROVE, reject=Perm.APPROVE, undo=Perm.REQUEST_ACTIONS)
    queryset = Batch.objects.select_related("integration", "requested_by").prefetch_related("actions")
    serializer_class = BatchSerializer
    keyset_ordering = ["-created_at", "-id"]

    def _move(self, request: Request, pk: str | None, move: Any, **extra: Any) -> Response:
        batch = get_object_or_404(Batch, pk=pk)
        result = move(actor=acting_person(request), batch=batch, request=request, **extra)
        if isinstance(result, Batch):
            return Response(BatchSerializer(result).data, status=status.HTTP_201_CREATED)
        batch.refresh_from_db()
        return Response(BatchSerializer(batch).data)

    @extend_schema(request=DecisionSerializer, responses={200: BatchSerializer})
    @action(detail=True, methods=["post"])
    def approve(self, request: Request, pk: str | None = None) -> Response:
        return self._move(request, pk, batch_approve, comment=_comment(request))

    @extend_schema(request=DecisionSerializer, responses={200: BatchSerializer})
    @action(detail=True, methods=["post"])
    def reject(self, request: Request, pk: str | None = None) -> Response:
        get_object_or_404(Batch, pk=pk)  # a batch that is not there answers 404 before its comment is read
        return self._move(request, pk, batch_reject, comment=_comment(request))

    @extend_schema(request=None, responses={201: BatchSerializer})
    @action(detail=True, methods=["post"])
    def undo(self, request: Request, pk: str | None = None) -> Response:
        return self._move(request, pk, batch_undo)


class AccessRequestViewSet(mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet[AccessRequest]):
    """Access requests: ``?state=pending``, ``?mine=true`` for the caller's own.

    Access added may carry ``ends_at``; admins ``end`` it early or ``extend`` it.
    """

    access_policy = api_policy(
        create=Perm.REQUEST_ACTIONS,
        approve=Perm.APPROVE,
        reject=Perm.APPROVE,
        cancel=Perm.REQUEST_ACTIONS,
        end=Perm.APPROVE,
        extend=Perm.APPROVE,
    )
    queryset = AccessRequest.objects.select_related("requested_by", "decided_by", "action", "ended_by", "end_action")
    serializer_class = AccessRequestSerializer
    filterset_fields = ["state", "integration", "operation"]
    keyset_ordering = ["-created_at", "-id"]

    def get_queryset(self) -> Any:
        queryset = super().get_queryset()
        if self.request.query_params.get("mine") == "true":
            queryset = queryset.filter(requested_by=acting_person(self.request))
        return queryset

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = AccessRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        access = access_request_create(
            actor=acting_person(request),
            target_user=data["target_user"],
            target_group=data["target_group"],
            operation=data["operation"],
            justification=data["justification"],
            ends_at=data.get("ends_at"),
            request=request,
        )
        return Response(AccessRequestSerializer(access).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=DecisionSerializer, responses={200: AccessRequestSerializer})
    @action(detail=True, methods=["post"])
    def approve(self, request: Request, pk: str | None = None) -> Response:
        access = get_object_or_404(AccessRequest, pk=pk)
        return _moved(
            request, access_request_approve, AccessRequestSerializer, access=access, comment=_comment(request)
        )

    @extend_schema(request=DecisionSerializer, responses={200: AccessRequestSerializer})
    @action(detail=True, methods=["post"])
    def reject(self, request: Request, pk: str | None = None) -> Response:
        access = get_object_or_404(AccessRequest, pk=pk)
        return _moved(request, access_request_reject, AccessRequestSerializer, access=access, comment=_comment(request))

    @extend_schema(request=None, responses={200: AccessRequestSerializer})
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: str | None = None) -> Response:
        access = get_object_or_404(AccessRequest, pk=pk)
        return _moved(request, access_request_cancel, AccessRequestSerializer, access=access)

    @extend_schema(request=AccessEndSerializer, responses={200: AccessRequestSerializer})
    @action(detail=True, methods=["post"])
    def end(self, request: Request, pk: str | None = None) -> Response:
        """End approved access now: the removal is requested at once."""
        access = get_object_or_404(AccessRequest, pk=pk)
        body = AccessEndSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        return _moved(
            request, access_request_end, AccessRequestSerializer, access=access, reason=body.validated_data["reason"]
        )

    @extend_schema(request=AccessExtendSerializer, responses={200: AccessRequestSerializer})
    @action(detail=True, methods=["post"])
    def extend(self, request: Request, pk: str | None = None) -> Response:
        """Move the end of approved access later."""
        access = get_object_or_404(AccessRequest, pk=pk)
        body = AccessExtendSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        return _moved(
            request,
            access_request_extend,
            AccessRequestSerializer,
            access=access,
            ends_at=body.validated_data["ends_at"],
        )


class AttributeTransformerViewSet(
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.ReadOnlyModelViewSet[AttributeTransformer],
):
    """Transformers (``?integration=``), in order; ``preview/?integration=&person=`` shows the payload.

    ``PATCH {"position": n}`` moves a row; the others are numbered 1..n around it.
    """

    access_policy = api_policy(write=Perm.MANAGE_INTEGRATIONS, preview=Perm.VIEW)
    queryset = AttributeTransformer.objects.all()
    serializer_class = AttributeTransformerSerializer
    filterset_fields = ["integration"]
    keyset_ordering = ["position", "id"]

    def get_serializer_class(self) -> type[serializers.BaseSerializer[AttributeTransformer]]:
        if self.action in {"update", "partial_update"}:
            return AttributeTransformerMoveSerializer
        return AttributeTransformerSerializer

    def perform_update(self, serializer: serializers.BaseSerializer[AttributeTransformer]) -> None:
        row = serializer.instance
        assert isinstance(row, AttributeTransformer)
        transformer_move(
            actor=acting_person(self.request),
            transformer=row,
            # A PATCH without a position leaves the row where it is.
            position=serializer.validated_data.get("position", row.position),
            request=self.request,
        )

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = AttributeTransformerSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        row = transformer_add(
            actor=acting_person(request),
            integration=data["integration"],
            attribute_name=data["attribute_name"],
            source=data["source"],
            value=data["value"],
            request=request,
        )
        if "position" in data:
            transformer_move(actor=acting_person(request), transformer=row, position=data["position"], request=request)
        return Response(AttributeTransformerSerializer(row).data, status=status.HTTP_201_CREATED)

    def perform_destroy(self, instance: AttributeTransformer) -> None:
        transformer_delete(actor=acting_person(self.request), transformer=instance, request=self.request)

    @extend_schema(responses={200: OpenApiResponse(description="The SCIM user that would be sent")})
    @action(detail=False, methods=["get"])
    def preview(self, request: Request) -> Response:
        integration_id = request.query_params.get("integration", "")
        if not integration_id.isdecimal():  # not isdigit(): "²" is a digit int() refuses
            raise InvalidInput("Give the integration's id.", "integration")
        integration = get_object_or_404(Integration, pk=int(integration_id))
        person = Person.objects.filter(username__iexact=request.query_params.get("person", "")).first()
        if person is None:
            raise InvalidInput("No person with this user name.", "person")
        return Response(user_resource(payload_for(person, integration)))


class ApprovalPoliciesView(APIView):
    """``/api/v1/integrations/{id}/approval-policies/``: read; PATCH a list to change."""

    access_policy = api_policy(write=Perm.MANAGE_INTEGRATIONS)

    @extend_schema(responses={200: ApprovalPolicyItemSerializer(many=True)})
    def get(self, request: Request, pk: int) -> Response:
        return Response(approval_policies_of(get_object_or_404(Integration, pk=pk)))

    @extend_schema(
        request=ApprovalPolicyItemSerializer(many=True), responses={200: ApprovalPolicyItemSerializer(many=True)}
    )
    def patch(self, request: Request, pk: int) -> Response:
        integration = get_object_or_404(Integration, pk=pk)
        items = ApprovalPolicyItemSerializer(data=request.data, many=True)
        items.is_valid(raise_exception=True)
        for item in items.validated_data:
            approval_policy_set(actor=acting_person(request), integration=integration, request=request, **item)
        return Response(approval_policies_of(integration))


class PersonRevocationsView(ListAPIView[Revocation]):
    """``GET /api/v1/people/{id}/revocations/``: the person's revocation records, newest first."""

    access_policy = api_policy()
    serializer_class = RevocationSerializer
    keyset_table = REVOCATIONS_TABLE

    def get_queryset(self) -> Any:
        if getattr(self, "swagger_fake_view", False):  # the schema asks for the model only
            return Revocation.objects.none()
        person = get_object_or_404(Person, pk=self.kwargs["pk"])
        return revocations_of_person(person)


class RevocationLatencyView(APIView):
    """``GET /api/v1/integrations/{id}/revocation-latency/``: p50 and p95 from request to verified
    revocation over 30 days, and the count."""

    access_policy = api_policy()

    @extend_schema(responses={200: RevocationLatencySerializer})
    def get(self, request: Request, pk: int) -> Response:
        integration = get_object_or_404(Integration.all_objects, pk=pk)
        return Response(RevocationLatencySerializer(revocation_latency(integration=integration)).data)
