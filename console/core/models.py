"""The console's own rows: worker liveness (for /readyz), console-wide settings, throttle counters.

They were the web shell's models and keep its tables (``web_*``).
"""

from django.db import models

from console.core.crypto import EncryptedTextField
from console.core.db import first_raw


class WorkerHeartbeat(models.Model):
    """The last time each Celery worker said it was alive."""

    hostname = models.CharField(max_length=255, unique=True)
    last_seen_at = models.DateTimeField()
    started_at = models.DateTimeField()

    class Meta:
        db_table = "web_workerheartbeat"

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
    # Settings > Sign-in: OpenID Connect (console/accounts/oidc.py) and the second factor
    oidc_enabled = models.BooleanField(
        "Sign in with OpenID Connect",
        default=False,
        help_text="Offer sign-in through the company's identity provider.",
    )
    oidc_issuer = models.URLField(
        "Issuer URL",
        blank=True,
        help_text="The provider's issuer; its discovery document is read from "
        "<issuer>/.well-known/openid-configuration.",
    )
    oidc_client_id = models.CharField("Client ID", max_length=255, blank=True)
    # Write-only, like an integration's credentials: pages and the API say only whether it is set.
    oidc_client_secret = EncryptedTextField("Client secret", blank=True)
    oidc_client_secret_changed_at = models.DateTimeField(null=True, blank=True, editable=False)
    oidc_scopes = models.CharField(
        "Scopes", max_length=255, default="openid profile email", help_text="Separated by spaces; openid is added."
    )
    oidc_username_claim = models.CharField(
        "Claim that names the person",
        max_length=32,
        choices=[("preferred_username", "preferred_username"), ("email", "email")],
        default="preferred_username",
        help_text="Matched to the person's user name, case-insensitively.",
    )
    oidc_button_label = models.CharField("Button label", max_length=100, default="Sign in with SSO")
    oidc_create_people = models.BooleanField(
        "Create unknown people at sign-in",
        default=False,
        help_text="Just-in-time creation; never while SCIM provisioning is on.",
    )
    oidc_default_role = models.ForeignKey(
        "accounts.Role",
        verbose_name="Role of people created at sign-in",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    password_sign_in_admins_only = models.BooleanField(
        "Only local admins sign in with a password",
        default=False,
        help_text="While OpenID Connect sign-in is on, everyone else is sent to the provider.",
    )
    second_factor_required = models.BooleanField(
        "Require a second factor for password sign-in",
        default=False,
        help_text="Every local account enrols an authenticator app at its next sign-in. API keys are unaffected.",
    )
    # Settings > Pipeline
    extraction_interval_minutes = models.PositiveIntegerField(
        "Extraction interval (minutes)",
        default=60,
        help_text="How often each integration is read, unless it overrides this.",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "web_consolesettings"
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

    @property
    def oidc_ready(self) -> bool:
        """OpenID Connect sign-in is on and configured enough to offer."""
        return self.oidc_enabled and bool(self.oidc_issuer and self.oidc_client_id)


class ThrottleCounter(models.Model):
    """A count of attempts in a fixed window (sign-ins, SCIM requests), where the cache is not Redis.

    Counted by one upsert in :mod:`console.core.counters`; a row whose window has ended
    starts again at one, and the hourly clean-up deletes those nobody counts any more.
    """

    key = models.CharField(max_length=255, unique=True)
    count = models.PositiveIntegerField(default=0)
    window_ends_at = models.DateTimeField(db_index=True)

    class Meta:
        db_table = "web_throttlecounter"

    def __str__(self) -> str:
        return f"{self.key}: {self.count}"
