from django.urls import path

from provisioning import views

urlpatterns = [
    path("", views.action_list, name="action_list"),
    path("request/", views.action_request_view, name="action_request"),
    path("export/", views.action_export_view, name="action_export"),
    path("revocations/", views.revocation_list, name="revocation_list"),
    path("<int:pk>/", views.action_detail, name="action_detail"),
    path("<int:pk>/approve/", views.action_approve_view, name="action_approve"),
    path("<int:pk>/reject/", views.action_reject_view, name="action_reject"),
    path("<int:pk>/cancel/", views.action_cancel_view, name="action_cancel"),
    path("<int:pk>/retry/", views.action_retry_view, name="action_retry"),
    path("access-requests/", views.access_request_list, name="access_request_list"),
    path("access-requests/new/", views.access_request_create_view, name="access_request_create"),
    path("access-requests/<int:pk>/", views.access_request_detail, name="access_request_detail"),
    path("access-requests/<int:pk>/approve/", views.access_request_approve_view, name="access_request_approve"),
    path("access-requests/<int:pk>/reject/", views.access_request_reject_view, name="access_request_reject"),
    path("access-requests/<int:pk>/cancel/", views.access_request_cancel_view, name="access_request_cancel"),
    path("access-requests/<int:pk>/end/", views.access_request_end_view, name="access_request_end"),
    path("access-requests/<int:pk>/extend/", views.access_request_extend_view, name="access_request_extend"),
    path("bulk/", views.batch_request_view, name="batch_request"),
    path("batches/<int:pk>/", views.batch_detail, name="batch_detail"),
    path("batches/<int:pk>/approve/", views.batch_approve_view, name="batch_approve"),
    path("batches/<int:pk>/reject/", views.batch_reject_view, name="batch_reject"),
    path("batches/<int:pk>/undo/", views.batch_undo_view, name="batch_undo"),
    path("integrations/<int:pk>/transformers/", views.transformer_add_view, name="transformer_add"),
    path(
        "integrations/<int:pk>/transformers/<int:transformer_pk>/delete/",
        views.transformer_delete_view,
        name="transformer_delete",
    ),
    path(
        "integrations/<int:pk>/transformers/<int:transformer_pk>/move/",
        views.transformer_move_view,
        name="transformer_move",
    ),
    path("integrations/<int:pk>/transformers/preview/", views.transformer_preview_view, name="transformer_preview"),
    path("integrations/<int:pk>/approval-policies/", views.approval_policies_view, name="approval_policies"),
    path("integrations/<int:pk>/resume/", views.integration_resume_view, name="integration_resume"),
]
