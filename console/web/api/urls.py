from django.urls import path

from console.core.api import ConsoleRouter
from console.web.api.views import AuditEventViewSet, ConsoleSettingsView

router = ConsoleRouter()
router.register("audit-events", AuditEventViewSet, basename="auditevent")

urlpatterns = [
    path("settings/", ConsoleSettingsView.as_view(), name="console-settings"),
    *router.urls,
]
