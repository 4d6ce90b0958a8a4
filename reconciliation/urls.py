"""The Drift tab of an integration's pages (under /integrations/, beside integrations' own)."""

from django.urls import path

from reconciliation import views

urlpatterns = [
    path("<int:pk>/drift/", views.drift_tab, name="drift_tab"),
    path("<int:pk>/drift/check/", views.drift_check, name="drift_check"),
]
