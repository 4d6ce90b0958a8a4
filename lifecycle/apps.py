from django.apps import AppConfig


class LifecycleConfig(AppConfig):
    name = "lifecycle"
    verbose_name = "Lifecycle automation"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from integrations.explain import register_membership_explainer
        from lifecycle import receivers  # noqa: F401 - connects the identity-event and action signals
        from lifecycle.explain import memberships_granted

        register_membership_explainer(memberships_granted, order=40)
