"""``/api/v1/``: every REST resource, registered on one router."""

from django.urls import path

from console.accounts.api.teams import TeamViewSet
from console.accounts.api.views import ApiKeyViewSet, PersonViewSet, RoleViewSet
from console.core.api import ConsoleRouter
from console.web.api.views import AuditEventViewSet, ConsoleSettingsView

router = ConsoleRouter()
router.register("people", PersonViewSet, basename="person")
router.register("roles", RoleViewSet, basename="role")
router.register("api-keys", ApiKeyViewSet, basename="apikey")
router.register("teams", TeamViewSet, basename="team")
router.register("audit-events", AuditEventViewSet, basename="auditevent")

urlpatterns = [
    path("settings/", ConsoleSettingsView.as_view(), name="console-settings"),
    *router.urls,
]
