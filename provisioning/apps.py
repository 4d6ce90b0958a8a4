from django.apps import AppConfig


class ProvisioningConfig(AppConfig):
    """Actions, approvals, access requests and the workers that carry them out."""

    name = "provisioning"
    verbose_name = "Provisioning"
