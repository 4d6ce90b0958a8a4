"""``/api/v1/integrations/{id}/drift/`` (open items), ``…/drift/runs/`` (the computations) and
``…/drift/compute/`` (queue one): the Drift tab's data, through the same selectors and service."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from console.accounts.access import acting_person, api_policy
from console.accounts.permissions import Perm
from console.core.errors import InvalidInput
from reconciliation.api.lookups import integration_or_404
from reconciliation.api.serializers import DriftItemSerializer, DriftRequestedSerializer, DriftRunSerializer
from reconciliation.models import DriftCategory, DriftItem, DriftRun
from reconciliation.selectors import drift_items
from reconciliation.services import drift_request, drift_running_words
from reconciliation.tables import DRIFT_TABLE

CATEGORY_FILTER = OpenApiParameter(
    "category", str, enum=DriftCategory.values, description="Only the open items of this category."
)


class DriftItemListView(generics.GenericAPIView[DriftItem]):
    """The integration's open drift, as on its Drift tab: ``?category=``, ``?ordering=`` (``category``,
    ``since``), keyset pages."""

    access_policy = api_policy()
    serializer_class = DriftItemSerializer
    keyset_table = DRIFT_TABLE
    filter_backends: list[Any] = []

    @extend_schema(parameters=[CATEGORY_FILTER], responses={200: DriftItemSerializer(many=True)})
    def get(self, request: Request, pk: int) -> Response:
        items = drift_items(integration=integration_or_404(pk))
        category = request.query_params.get("category", "")
        if category:
            if category not in DriftCategory.values:
                raise InvalidInput(f"The category is one of: {', '.join(DriftCategory.values)}.", field="category")
            items = items.filter(category=category)
        page = self.paginate_queryset(items)
        return self.get_paginated_response(self.get_serializer(page, many=True).data)


class DriftRunListView(generics.GenericAPIView[DriftRun]):
    """The integration's drift computations, newest first, each with its counts per category."""

    access_policy = api_policy()
    serializer_class = DriftRunSerializer
    keyset_ordering = ["-started_at", "-id"]
    filter_backends: list[Any] = []

    def get_queryset(self) -> QuerySet[DriftRun]:
        return DriftRun.objects.filter(integration=integration_or_404(self.kwargs["pk"]))

    @extend_schema(responses={200: DriftRunSerializer(many=True)})
    def get(self, request: Request, pk: int) -> Response:
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(self.get_serializer(page, many=True).data)


class DriftComputeView(APIView):
    """Queue a drift computation of the integration (202); its result lands in ``…/drift/runs/``.
    While one runs, nothing is queued: 202 with ``queued`` false and the running one in ``running``."""

    access_policy = api_policy(write=Perm.MANAGE_INTEGRATIONS)

    @extend_schema(request=None, responses={202: DriftRequestedSerializer, 409: None})
    def post(self, request: Request, pk: int) -> Response:
        integration = integration_or_404(pk)
        running = drift_request(actor=acting_person(request), integration=integration, request=request)
        if running is not None:
            body: dict[str, Any] = {
                "queued": False,
                "integration": integration.pk,
                "running": running.pk,
                "detail": drift_running_words(running),
            }
        else:
            body = {
                "queued": True,
                "integration": integration.pk,
                "running": None,
                "detail": "Queued: the result appears in drift/runs/ and drift/ once a worker has computed it.",
            }
        return Response(body, status=status.HTTP_202_ACCEPTED)
