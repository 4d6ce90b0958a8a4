"""Reconciliation's pages under an integration's (/integrations/<pk>/drift/, …/plans/…)."""

from django.urls import path

from reconciliation import plan_views, views

urlpatterns = [
    path("<int:pk>/drift/", views.drift_tab, name="drift_tab"),
    path("<int:pk>/drift/check/", views.drift_check, name="drift_check"),
    path("<int:pk>/plans/", plan_views.plan_list, name="plan_list"),
    path("<int:pk>/plans/new/", plan_views.plan_create_view, name="plan_create"),
    path("<int:pk>/plans/<int:plan>/", plan_views.plan_detail, name="plan_detail"),
    path("<int:pk>/plans/<int:plan>/apply/", plan_views.plan_apply_view, name="plan_apply"),
    path("<int:pk>/auto-remediation/", plan_views.auto_remediation_edit, name="auto_remediation_edit"),
]
