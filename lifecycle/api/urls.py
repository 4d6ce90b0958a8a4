from django.urls import path

from console.core.api import ConsoleRouter
from lifecycle.api.views import BirthrightMappingViewSet, GroupSensitiveView, LifecyclePolicyViewSet

router = ConsoleRouter()
router.register("lifecycle-policies", LifecyclePolicyViewSet, basename="lifecycle-policy")
router.register("birthright-mappings", BirthrightMappingViewSet, basename="birthright-mapping")

urlpatterns = [
    *router.urls,
    path(
        "integrations/<int:pk>/groups/<int:group_pk>/sensitive/",
        GroupSensitiveView.as_view(),
        name="target_group_sensitive",
    ),
]
