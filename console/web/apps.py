from django.apps import AppConfig


class WebConfig(AppConfig):
    """The web shell: dashboard, health endpoints and the settings page."""

    name = "console.web"
    label = "web"
    verbose_name = "Web shell"
