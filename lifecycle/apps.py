from django.apps import AppConfig


class LifecycleConfig(AppConfig):
    name = "lifecycle"
    verbose_name = "Lifecycle automation"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from lifecycle import receivers  # noqa: F401 - connects the identity-event and action signals
