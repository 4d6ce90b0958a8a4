"""Plans' pages, under an integration's (/integrations/<pk>/plans/…)."""

from django.urls import path

from reconciliation import views

urlpatterns = [
    path("<int:pk>/plans/", views.plan_list, name="plan_list"),
    path("<int:pk>/plans/new/", views.plan_create_view, name="plan_create"),
    path("<int:pk>/plans/<int:plan>/", views.plan_detail, name="plan_detail"),
    path("<int:pk>/plans/<int:plan>/apply/", views.plan_apply_view, name="plan_apply"),
    path("<int:pk>/auto-remediation/", views.auto_remediation_edit, name="auto_remediation_edit"),
]
