from django.urls import path

from integrations import views

urlpatterns = [
    path("", views.integration_list, name="integration_list"),
    path("new/", views.integration_create, name="integration_create"),
    path("test-connection/", views.integration_test_unsaved, name="integration_test_unsaved"),
    path("<int:pk>/", views.integration_detail, name="integration_detail"),
    path("<int:pk>/edit/", views.integration_edit, name="integration_edit"),
    path("<int:pk>/provisioning/", views.integration_provisioning, name="integration_provisioning"),
    path("<int:pk>/settings/", views.integration_settings, name="integration_settings"),
    path("<int:pk>/delete/", views.integration_delete, name="integration_delete"),
    path("<int:pk>/extract/", views.integration_extract, name="integration_extract"),
    path("<int:pk>/progress/", views.integration_run_progress, name="integration_progress"),
    path("<int:pk>/test-connection/", views.integration_test_connection, name="integration_test_connection"),
    path("<int:pk>/probe/", views.integration_probe, name="integration_probe"),
    path("<int:pk>/users/", views.integration_users, name="integration_users"),
    path("<int:pk>/users/<int:user_pk>/", views.target_user_detail, name="target_user_detail"),
    path("<int:pk>/users/<int:user_pk>/owner/", views.target_user_owner, name="target_user_owner"),
    path("<int:pk>/groups/", views.integration_groups, name="integration_groups"),
    path("<int:pk>/groups/suggest/", views.target_group_suggest, name="target_group_suggest"),
    path("<int:pk>/runs/", views.integration_runs, name="integration_runs"),
    path("<int:pk>/runs/<int:run_pk>/", views.extraction_run_detail, name="extraction_run_detail"),
    path("<int:pk>/runs/<int:run_pk>/cancel/", views.extraction_run_cancel_view, name="extraction_run_cancel"),
    path("<int:pk>/groups/<int:group_pk>/", views.target_group_detail, name="target_group_detail"),
]
