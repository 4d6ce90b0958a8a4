"""URL configuration: the UI, the REST API, health endpoints (and /scim/v2 later)."""

from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from console.accounts.access import api_policy
from console.web import audit_views
from console.web import views as web_views
from provisioning import views as provisioning_views


class SchemaView(SpectacularAPIView):
    access_policy = api_policy()


class DocsView(SpectacularSwaggerView):
    access_policy = api_policy()


urlpatterns = [
    path("", web_views.dashboard, name="dashboard"),
    path("healthz", web_views.healthz, name="healthz"),
    path("favicon.ico", web_views.favicon, name="favicon"),
    path("readyz", web_views.readyz, name="readyz"),
    path("", include("console.accounts.urls")),
    path("search/", web_views.search_view, name="search"),
    path("audit/", audit_views.audit_list, name="audit_list"),
    path("audit/verbs/", audit_views.audit_verb_suggest, name="audit_verb_suggest"),
    path("integrations/", include("integrations.urls")),
    path("integrations/", include("lifecycle.urls")),
    path("integrations/", include("reconciliation.urls")),
    path("settings/", web_views.settings_view, name="settings"),
    path("api/v1/", include("console.accounts.api.urls")),
    path("api/v1/", include("console.web.api.urls")),
    path("api/v1/", include("integrations.api.urls")),
    path("api/v1/", include("provisioning.api.urls")),
    path("api/v1/", include("lifecycle.api.urls")),
    path("api/v1/", include("reconciliation.api.urls")),
    path("actions/", include("provisioning.urls")),
    path("approvals/", provisioning_views.approval_inbox, name="approval_inbox"),
    path("scim/v2/", include("console.scim.urls")),
    path("api/schema/", SchemaView.as_view(), name="api_schema"),
    path("api/docs/", DocsView.as_view(url_name="api_schema"), name="api_docs"),
]

handler404 = "console.web.errors.not_found"
handler500 = "console.web.errors.server_error"
