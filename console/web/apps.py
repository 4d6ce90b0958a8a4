from django.apps import AppConfig


class WebConfig(AppConfig):
    """The web shell: dashboard, health endpoints, htmx and API conventions."""

    name = "console.web"
    label = "web"
    verbose_name = "Web shell"
