from django.urls import path

from console.core.api import ConsoleRouter
from provisioning.api.views import (
    AccessRequestViewSet,
    ActionViewSet,
    ApprovalPoliciesView,
    AttributeTransformerViewSet,
    BatchViewSet,
    IntegrationResumeView,
    PersonRevocationsView,
    RevocationLatencyView,
)

router = ConsoleRouter()
router.register("actions", ActionViewSet, basename="action")
router.register("batches", BatchViewSet, basename="batch")
router.register("access-requests", AccessRequestViewSet, basename="accessrequest")
router.register("transformers", AttributeTransformerViewSet, basename="transformer")

urlpatterns = [
    *router.urls,
    path("integrations/<int:pk>/resume/", IntegrationResumeView.as_view(), name="integration_resume_api"),
    path("integrations/<int:pk>/approval-policies/", ApprovalPoliciesView.as_view(), name="approval_policies_api"),
    path("integrations/<int:pk>/revocation-latency/", RevocationLatencyView.as_view(), name="revocation_latency_api"),
    path("people/<int:pk>/revocations/", PersonRevocationsView.as_view(), name="person_revocations_api"),
]
