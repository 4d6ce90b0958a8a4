from django.apps import AppConfig


class ScimConfig(AppConfig):
    """/scim/v2: identity providers push people and groups into the console."""

    name = "console.scim"
    label = "scim"
    verbose_name = "SCIM service provider"

    def ready(self) -> None:
        from django.db.models import CharField
        from django.db.models.functions import Lower

        # ``field__lower``: filters compare lower(column), the expression the
        # case-insensitive indexes are built on.
        CharField.register_lookup(Lower)
