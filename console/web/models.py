"""Worker liveness, for /readyz."""

from django.db import models

from console.db import first_raw


class WorkerHeartbeat(models.Model):
    """The last time each Celery worker said it was alive."""

    hostname = models.CharField(max_length=255, unique=True)
    last_seen_at = models.DateTimeField()
    started_at = models.DateTimeField()

    def __str__(self) -> str:
        return self.hostname


class ConsoleSettings(models.Model):
    """Console-wide settings: one row, read with :meth:`load`."""

    # Settings > Sign-in
    scim_provisioning_enabled = models.BooleanField(
        "Enable SCIM provisioning",
        default=False,
        help_text="Let identity providers push people and groups to /scim/v2.",
    )
    # Settings > Pipeline
    extraction_interval_minutes = models.PositiveIntegerField(
        "Extraction interval (minutes)",
        default=60,
        help_text="How often each integration is read, unless it overrides this.",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "console settings"

    def __str__(self) -> str:
        return "console settings"

    @classmethod
    def load(cls) -> "ConsoleSettings":
        # Read on every SCIM request: a plain statement, not the ORM's get_or_create.
        singleton = f"SELECT * FROM {cls._meta.db_table} WHERE id = 1"  # noqa: S608 - the model's own table
        found = first_raw(cls, singleton)
        if found is not None:
            return found
        settings, _ = cls.objects.get_or_create(pk=1)
        return settings


class ThrottleCounter(models.Model):
    """A count of attempts in a fixed window (sign-ins, SCIM requests), where the cache is not Redis.

    Counted by one upsert in :mod:`console.web.counters`; a row whose window has ended
    starts again at one, and the hourly clean-up deletes those nobody counts any more.
    """

    key = models.CharField(max_length=255, unique=True)
    count = models.PositiveIntegerField(default=0)
    window_ends_at = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return f"{self.key}: {self.count}"
