from rest_framework.routers import DefaultRouter

from integrations.api.views import IntegrationViewSet

router = DefaultRouter(trailing_slash=True)
router.include_root_view = False
router.include_format_suffixes = False
router.register("integrations", IntegrationViewSet, basename="integration")

urlpatterns = router.urls
