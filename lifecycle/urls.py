"""The Lifecycle tab of an integration's pages (under /integrations/, beside integrations' own)."""

from django.urls import path

from lifecycle import views

urlpatterns = [
    path("<int:pk>/lifecycle/", views.lifecycle_tab, name="lifecycle_tab"),
    path("<int:pk>/lifecycle/preview/", views.lifecycle_preview, name="lifecycle_preview"),
    path("<int:pk>/lifecycle/plan/", views.lifecycle_plan, name="lifecycle_plan"),
    path("<int:pk>/lifecycle/mappings/", views.lifecycle_mapping_create, name="lifecycle_mapping_create"),
    path(
        "<int:pk>/lifecycle/mappings/<int:mapping_pk>/approve/",
        views.lifecycle_mapping_approve,
        name="lifecycle_mapping_approve",
    ),
    path(
        "<int:pk>/lifecycle/mappings/<int:mapping_pk>/reject/",
        views.lifecycle_mapping_reject,
        name="lifecycle_mapping_reject",
    ),
    path(
        "<int:pk>/lifecycle/mappings/<int:mapping_pk>/delete/",
        views.lifecycle_mapping_delete,
        name="lifecycle_mapping_delete",
    ),
    path("<int:pk>/lifecycle/sensitive/", views.lifecycle_group_sensitive, name="lifecycle_group_sensitive"),
]
