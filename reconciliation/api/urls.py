from django.urls import path

from reconciliation.api.plan_views import AutoRemediationView, PlanApplyView, PlanDetailView, PlanListView
from reconciliation.api.views import DriftComputeView, DriftItemListView, DriftRunListView

urlpatterns = [
    path("integrations/<int:pk>/drift/", DriftItemListView.as_view(), name="integration_drift"),
    path("integrations/<int:pk>/drift/runs/", DriftRunListView.as_view(), name="integration_drift_runs"),
    path("integrations/<int:pk>/drift/compute/", DriftComputeView.as_view(), name="integration_drift_compute"),
    path("integrations/<int:pk>/plans/", PlanListView.as_view(), name="api_plan_list"),
    path("integrations/<int:pk>/plans/<int:plan>/", PlanDetailView.as_view(), name="api_plan_detail"),
    path("integrations/<int:pk>/plans/<int:plan>/apply/", PlanApplyView.as_view(), name="api_plan_apply"),
    path("lifecycle-policies/<int:pk>/auto-remediation/", AutoRemediationView.as_view(), name="api_auto_remediation"),
]
