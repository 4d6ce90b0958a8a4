from django.urls import path

from reconciliation.api.views import DriftComputeView, DriftItemListView, DriftRunListView

urlpatterns = [
    path("integrations/<int:pk>/drift/", DriftItemListView.as_view(), name="integration_drift"),
    path("integrations/<int:pk>/drift/runs/", DriftRunListView.as_view(), name="integration_drift_runs"),
    path("integrations/<int:pk>/drift/compute/", DriftComputeView.as_view(), name="integration_drift_compute"),
]
