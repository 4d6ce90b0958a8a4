from django.urls import path

from reconciliation.api.views import AutoRemediationView, PlanApplyView, PlanDetailView, PlanListView

urlpatterns = [
    path("integrations/<int:pk>/plans/", PlanListView.as_view(), name="api_plan_list"),
    path("integrations/<int:pk>/plans/<int:plan>/", PlanDetailView.as_view(), name="api_plan_detail"),
    path("integrations/<int:pk>/plans/<int:plan>/apply/", PlanApplyView.as_view(), name="api_plan_apply"),
    path("lifecycle-policies/<int:pk>/auto-remediation/", AutoRemediationView.as_view(), name="api_auto_remediation"),
]
