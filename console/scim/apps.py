from django.apps import AppConfig


class ScimConfig(AppConfig):
    """/scim/v2: identity providers push people and groups into the console."""

    name = "console.scim"
    label = "scim"
    verbose_name = "SCIM service provider"
