from console.accounts.api.views import ApiKeyViewSet, PersonViewSet, RoleViewSet, TeamViewSet
from console.core.api import ConsoleRouter

router = ConsoleRouter()
router.register("people", PersonViewSet, basename="person")
router.register("roles", RoleViewSet, basename="role")
router.register("api-keys", ApiKeyViewSet, basename="apikey")
router.register("teams", TeamViewSet, basename="team")

urlpatterns = router.urls
