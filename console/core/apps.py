from django.apps import AppConfig


class CoreConfig(AppConfig):
    """What every app shares: errors, bulk writes, crypto, redaction, keyset pages, tables, counters."""

    name = "console.core"
    label = "core"
    verbose_name = "Console core"
