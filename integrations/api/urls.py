from django.urls import path, re_path
from rest_framework.routers import DefaultRouter

from integrations.api.providers import CustomProviderComparisonView, CustomProviderPushView, CustomProviderView
from integrations.api.views import IntegrationTemplateListView, IntegrationViewSet

router = DefaultRouter(trailing_slash=True)
router.include_root_view = False
router.include_format_suffixes = False
router.register("integrations", IntegrationViewSet, basename="integration")

urlpatterns = [
    *router.urls,
    path("integration-templates/", IntegrationTemplateListView.as_view(), name="integration_templates"),
    # The custom-provider API keeps its documented spelling, with or without the final slash.
    re_path(r"^providers/custom/?$", CustomProviderView.as_view(), name="custom_provider"),
    re_path(r"^providers/custom/(?P<pk>\d+)/push/?$", CustomProviderPushView.as_view(), name="custom_provider_push"),
    re_path(
        r"^providers/custom/(?P<pk>\d+)/comparison/?$",
        CustomProviderComparisonView.as_view(),
        name="custom_provider_comparison",
    ),
]
