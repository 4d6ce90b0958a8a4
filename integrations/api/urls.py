from django.urls import path, re_path

from console.core.api import ConsoleRouter
from integrations.api.providers import CustomProviderComparisonView, CustomProviderPushView, CustomProviderView
from integrations.api.views import IntegrationTemplateListView, IntegrationViewSet, PersonAccountsView

router = ConsoleRouter()
router.register("integrations", IntegrationViewSet, basename="integration")

urlpatterns = [
    *router.urls,
    # A person's accounts: served here, as people (console.accounts) know nothing of integrations.
    path("people/<int:pk>/accounts/", PersonAccountsView.as_view(), name="person_accounts"),
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
