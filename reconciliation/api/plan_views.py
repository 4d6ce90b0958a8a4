"""``/api/v1/integrations/{id}/plans/`` (+ ``{plan}/``, ``{plan}/apply/``) and
``/api/v1/lifecycle-policies/{id}/auto-remediation/``, through ``reconciliation.plans`` and
``reconciliation.auto``, as the pages are."""

from __future__ import annotations

from typing import Any

from django.db.models import Count, QuerySet
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import generics, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from console.accounts.access import acting_person, api_policy
from console.accounts.permissions import Perm
from console.core.errors import InvalidInput
from console.core.pagination import PAGE_PARAMETERS, KeysetApiPagination
from lifecycle.models import LifecyclePolicy, PolicyMode
from provisioning.models import Batch
from reconciliation.api.lookups import integration_or_404
from reconciliation.api.plan_serializers import (
    AutoRemediationSerializer,
    BatchBriefSerializer,
    PlanApplySerializer,
    PlanCreateSerializer,
    PlanDetailSerializer,
    PlanItemSerializer,
    PlanSerializer,
)
from reconciliation.auto import ORPHANS_NOT_ELIGIBLE, auto_categories, auto_remediation_set
from reconciliation.models import AUTO_ELIGIBLE, DriftCategory, Plan
from reconciliation.plans import blocked_items, plan_apply, plan_create


def _body(request: Request) -> dict[str, Any]:
    if not isinstance(request.data, dict):
        raise InvalidInput("Send a JSON object.")
    return dict(request.data.items())


class PlanListView(generics.GenericAPIView[Plan]):
    """An integration's plans, newest first; POST ``{"categories": [...]}`` (default all) makes
    one of the open drift: one item per proposed action, with the requests it would send."""

    access_policy = api_policy(write=Perm.MANAGE_INTEGRATIONS)
    serializer_class = PlanSerializer
    keyset_ordering = ["-id"]

    def get_queryset(self) -> QuerySet[Plan]:
        if getattr(self, "swagger_fake_view", False):  # the schema's generation names no integration
            return Plan.objects.none()
        return Plan.objects.filter(integration_id=self.kwargs["pk"]).select_related("created_by")

    @extend_schema(operation_id="v1_integrations_plans_list", responses={200: PlanSerializer(many=True)})
    def get(self, request: Request, pk: int) -> Response:
        integration_or_404(pk)
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(PlanSerializer(page, many=True, context={"request": request}).data)

    @extend_schema(
        request=PlanCreateSerializer,
        responses={
            201: PlanDetailSerializer,
            202: OpenApiResponse(
                PlanSerializer,
                description="More drift items than PLAN_BACKGROUND_AFTER: the plan is being made by a worker "
                "(state making); follow url (also in Location) until its state is ready or failed.",
            ),
        },
    )
    def post(self, request: Request, pk: int) -> Response:
        integration = integration_or_404(pk)
        body = _body(request)
        plan = plan_create(
            actor=acting_person(request), integration=integration, categories=body.get("categories"), request=request
        )
        if plan.state == Plan.State.MAKING:
            made = PlanSerializer(plan, context={"request": request}).data
            return Response(made, status=status.HTTP_202_ACCEPTED, headers={"Location": made["url"]})
        return Response(_detail(plan, request), status=status.HTTP_201_CREATED)


ITEMS_CATEGORY = OpenApiParameter(
    "category", str, enum=DriftCategory.values, description="Only the plan's items of this category."
)


def _detail(plan: Plan, request: Request) -> dict[str, Any]:
    """The plan's fields and one keyset page of its items (by category, then id)."""
    items = plan.items.select_related("plan", "action")
    counts = dict(items.order_by().values_list("category").annotate(n=Count("id")).values_list("category", "n"))
    category = request.query_params.get("category", "")
    if category:
        if category not in DriftCategory.values:
            raise InvalidInput(f"The category is one of: {', '.join(DriftCategory.values)}.", field="category")
        items = items.filter(category=category)
    paginator = KeysetApiPagination()
    page = paginator.paginate_queryset(items, request, view=_ItemsOrder())
    return {
        **PlanSerializer(plan, context={"request": request}).data,
        "count": counts.get(category, 0) if category else sum(counts.values()),
        "counts": {c: counts[c] for c in DriftCategory.values if c in counts},
        **paginator.page_fields(),
        "results": PlanItemSerializer(page, many=True, context={"stale": blocked_items(page)}).data,
    }


class _ItemsOrder:
    keyset_ordering = ["category", "id"]


class PlanDetailView(APIView):
    """One plan with a page of its items: each item's action and the exact requests it would send,
    and its state (open, applied with its action and batch, stale when its drift was resolved
    since). The items are paged as every list is (``next``, ``previous``, ``results``)."""

    access_policy = api_policy()

    @extend_schema(
        operation_id="v1_integrations_plans_detail",
        parameters=[ITEMS_CATEGORY, *PAGE_PARAMETERS],
        responses={200: PlanDetailSerializer},
    )
    def get(self, request: Request, pk: int, plan: int) -> Response:
        return Response(_detail(get_object_or_404(Plan, pk=plan, integration=integration_or_404(pk)), request))


class PlanApplyView(APIView):
    """POST ``{"items": [ids]}`` or ``{"categories": [...]}`` (every open item of those, never an
    orphan's delete: name those in ``items``): an approver requests their actions, one batch
    per action type, held whole past the mass-change limits. Answers the batches."""

    access_policy = api_policy(write=Perm.APPROVE)

    @extend_schema(request=PlanApplySerializer, responses={201: BatchBriefSerializer(many=True)})
    def post(self, request: Request, pk: int, plan: int) -> Response:
        found = get_object_or_404(
            Plan.objects.select_related("integration"), pk=plan, integration=integration_or_404(pk)
        )
        body = _body(request)
        reason = body.get("reason", "")
        if not isinstance(reason, str):
            raise InvalidInput("Give the reason as text.", field="reason")
        batches = plan_apply(
            actor=acting_person(request),
            plan=found,
            item_ids=body.get("items"),
            categories=body.get("categories"),
            request=request,
            reason=reason.strip()[:1000],
        )
        return Response([_batch(b) for b in batches], status=status.HTTP_201_CREATED)


def _batch(batch: Batch) -> dict[str, Any]:
    return {
        "id": batch.pk,
        "action_type": batch.action_type,
        "held_reason": batch.held_reason,
        "actions": batch.actions.count(),
    }


class AutoRemediationView(APIView):
    """The drift categories the policy's integration resolves by itself while the policy is on
    (orphans are never eligible); PUT ``{"categories": [...]}`` (empty: none)."""

    access_policy = api_policy(write=Perm.MANAGE_INTEGRATIONS)

    def _policy(self, pk: int) -> LifecyclePolicy:
        return get_object_or_404(LifecyclePolicy, pk=pk, integration__archived_at__isnull=True)

    def _answer(self, policy: LifecyclePolicy) -> dict[str, Any]:
        categories = auto_categories(policy)
        return {
            "policy": policy.pk,
            "integration": policy.integration_id,
            "categories": categories,
            "eligible": AUTO_ELIGIBLE,
            "active": policy.mode == PolicyMode.ON and bool(categories),
            "orphans": ORPHANS_NOT_ELIGIBLE,
        }

    @extend_schema(responses={200: AutoRemediationSerializer})
    def get(self, request: Request, pk: int) -> Response:
        return Response(self._answer(self._policy(pk)))

    @extend_schema(request=AutoRemediationSerializer, responses={200: AutoRemediationSerializer})
    def put(self, request: Request, pk: int) -> Response:
        policy = self._policy(pk)
        body = _body(request)
        if "categories" not in body:
            raise InvalidInput(
                "Give the categories to resolve automatically (an empty list: none).", field="categories"
            )
        auto_remediation_set(
            actor=acting_person(request), policy=policy, categories=body["categories"], request=request
        )
        return Response(self._answer(policy))
