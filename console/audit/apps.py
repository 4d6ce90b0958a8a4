from django.apps import AppConfig


class AuditConfig(AppConfig):
    """The append-only event log."""

    name = "console.audit"
    label = "audit"
    verbose_name = "Audit"
