"""People, roles, teams and API keys."""

from __future__ import annotations

import hashlib
import hmac
import uuid
from typing import TYPE_CHECKING, Any

from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.db import models
from django.db.models import Case, F, Q, Value, When
from django.db.models.functions import Concat, Lower, Upper
from django.utils import timezone
from django.utils.crypto import salted_hmac

from console.core.crypto import EncryptedTextField

if TYPE_CHECKING:
    from console.accounts.permissions import Perm


class PersonManager(BaseUserManager["Person"]):
    def get_by_natural_key(self, username: str | None) -> Person:
        # userName compares case-insensitively (RFC 7643 §4.1.1).
        return self.get(username__iexact=username)

    def create_user(self, username: str, password: str | None = None, **fields: Any) -> Person:
        person = self.model(username=username, **fields)
        person.set_password(password)
        person.save(using=self._db)
        return person


class Source(models.TextChoices):
    LOCAL = "local", "Local"
    SCIM = "scim", "SCIM"


# The name the People list shows (Person.full_name) as an expression its sort and index share:
# the display name, else given and family names, else the user name.
PERSON_NAME_SORT = Case(
    When(~Q(display_name=""), then=F("display_name")),
    When(~Q(given_name="") & ~Q(family_name=""), then=Concat("given_name", Value(" "), "family_name")),
    When(~Q(given_name=""), then=F("given_name")),
    When(~Q(family_name=""), then=F("family_name")),
    default=F("username"),
    output_field=models.CharField(),
)


class Person(AbstractBaseUser):
    """Someone the console knows: a local account or one pushed by an identity provider."""

    # The id SCIM shows: unique across Users and Groups (RFC 7643 §3.1). The integer key
    # still finds the person at /scim/v2/Users/{pk}, for clients that stored it.
    scim_id = models.UUIDField("SCIM id", default=uuid.uuid4, unique=True, editable=False)
    username = models.CharField("user name", max_length=255, unique=True)
    external_id = models.CharField(max_length=255, blank=True, db_index=True)
    given_name = models.CharField(max_length=150, blank=True)
    family_name = models.CharField(max_length=150, blank=True)
    middle_name = models.CharField(max_length=150, blank=True)
    honorific_prefix = models.CharField(max_length=50, blank=True)
    honorific_suffix = models.CharField(max_length=50, blank=True)
    formatted_name = models.CharField(max_length=255, blank=True)
    display_name = models.CharField(max_length=255, blank=True)
    nick_name = models.CharField(max_length=255, blank=True)
    title = models.CharField(max_length=255, blank=True)
    user_type = models.CharField(max_length=255, blank=True)
    preferred_language = models.CharField(max_length=255, blank=True)
    locale = models.CharField(max_length=255, blank=True)
    timezone = models.CharField(max_length=255, blank=True)  # the SCIM attribute, as the IdP sent it
    # How the console shows times to this person (their choice on My profile); empty: the
    # SCIM timezone where it is a known zone, else UTC (console.web.middleware).
    time_zone = models.CharField("time zone for pages", max_length=64, blank=True)
    email = models.EmailField("primary email", blank=True, db_index=True)
    # Multi-valued SCIM attributes, as the identity provider sent them.
    emails = models.JSONField(default=list, blank=True)
    phone_numbers = models.JSONField(default=list, blank=True)
    # Other SCIM attributes kept as sent (addresses, photos, ims, entitlements, …).
    scim_attributes = models.JSONField(default=dict, blank=True)
    # Enterprise extension (urn:ietf:params:scim:schemas:extension:enterprise:2.0:User).
    employee_number = models.CharField(max_length=100, blank=True)
    cost_center = models.CharField(max_length=100, blank=True)
    organization = models.CharField(max_length=255, blank=True)
    division = models.CharField(max_length=255, blank=True)
    department = models.CharField(max_length=255, blank=True)
    manager = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="reports")
    is_active = models.BooleanField("active", default=True)
    # A password the console generated (the first admin's): the next sign-in asks for a new one.
    password_change_required = models.BooleanField(default=False)
    source = models.CharField(max_length=10, choices=Source.choices, default=Source.LOCAL)
    removed_at = models.DateTimeField(
        null=True, blank=True, help_text="When an identity provider deleted this person; the record stays."
    )
    roles: models.ManyToManyField[Role, Any] = models.ManyToManyField(
        "Role", blank=True, related_name="direct_members", verbose_name="direct roles"
    )
    session_generation = models.PositiveIntegerField(
        default=0, editable=False, help_text="Raised to end every session of the person at once."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = PersonManager()

    USERNAME_FIELD = "username"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []  # type: ignore[misc]

    class Meta:
        ordering = ["username"]
        constraints = [models.UniqueConstraint(Lower("username"), name="person_username_ci_unique")]
        # ``username__iexact`` (sign-in, SCIM look-ups, forms) compares upper(username) on
        # PostgreSQL: indexed, it stays one index probe at any number of people.
        indexes = [
            models.Index(Upper("username"), name="person_username_upper_idx"),
            # The People list sorts by department (console.core.tables: the field, then the id).
            models.Index(fields=["department", "id"], name="person_department_sort_idx"),
            models.Index(PERSON_NAME_SORT, F("id"), name="person_name_sort_idx"),
            models.Index(fields=["created_at", "id"], name="person_created_sort_idx"),
        ]

    def __str__(self) -> str:
        return self.username

    def _get_session_auth_hash(self, secret: str | None = None) -> str:
        # Django signs each session with this hash and drops a session whose hash no longer
        # matches; folding the generation in lets one UPDATE end all of a person's sessions.
        return salted_hmac(
            "console.accounts.Person.get_session_auth_hash",
            f"{self.password}:{self.session_generation}",
            secret=secret,
            algorithm="sha256",
        ).hexdigest()

    @property
    def full_name(self) -> str:
        return self.display_name or " ".join(p for p in (self.given_name, self.family_name) if p) or self.username

    def set_password(self, raw_password: str | None) -> None:
        """A password the person chose (ensure_admin marks a generated one after setting it)."""
        super().set_password(raw_password)
        self.password_change_required = False

    def has_console_permission(self, perm: Perm | str) -> bool:
        from console.accounts.selectors import person_permissions

        return self.is_active and str(perm) in person_permissions(person=self)


class Role(models.Model):
    """A named bundle of console permissions."""

    name = models.SlugField(max_length=64, unique=True)
    label = models.CharField(max_length=100)
    description = models.TextField(blank=True)
    is_builtin = models.BooleanField(default=False)
    permissions = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Team(models.Model):
    """A group of people: pushed by an identity provider, or made locally."""

    # As Person.scim_id: the SCIM id, never a person's; the integer key still finds /Groups/{pk}.
    scim_id = models.UUIDField("SCIM id", default=uuid.uuid4, unique=True, editable=False)
    name = models.CharField(max_length=255)
    external_id = models.CharField(max_length=255, blank=True, db_index=True)
    description = models.TextField(blank=True)
    source = models.CharField(max_length=10, choices=Source.choices, default=Source.LOCAL)
    members = models.ManyToManyField(Person, through="TeamMembership", related_name="teams", blank=True)
    # The group-to-role mapping: every member holds these roles while in the team.
    roles = models.ManyToManyField(Role, blank=True, related_name="teams")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(Lower("name"), name="team_name_ci_unique")]
        indexes = [models.Index(Upper("name"), name="team_name_upper_idx")]

    def __str__(self) -> str:
        return self.name


class TeamMembership(models.Model):
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="memberships")
    person = models.ForeignKey(Person, on_delete=models.CASCADE, related_name="team_memberships")
    display = models.CharField(
        max_length=255, blank=True, help_text="The member's name as the identity provider sent it."
    )
    added_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["team", "person"], name="team_membership_unique")]

    def __str__(self) -> str:
        return f"{self.person_id} in {self.team_id}"


API_KEY_PREFIX = "lck"


def hash_api_key_secret(secret: str) -> str:
    """Keys are 256-bit random, so one SHA-256 suffices (no brute force to slow down)."""
    return hashlib.sha256(secret.encode()).hexdigest()


class ApiKey(models.Model):
    """A personal API key. Only its hash is kept; the key is shown once, at creation."""

    owner = models.ForeignKey(Person, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, unique=True, help_text="Shown so a key can be recognised.")
    secret_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(Person, null=True, on_delete=models.SET_NULL, related_name="+")
    last_used_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(Person, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None

    @property
    def is_expired(self) -> bool:
        return self.expires_at is not None and self.expires_at <= timezone.now()

    @property
    def status(self) -> str:
        if self.is_revoked:
            return "revoked"
        if self.is_expired:
            return "expired"
        if not self.owner.is_active:
            return "disabled"
        return "active"

    def matches(self, secret: str) -> bool:
        return hmac.compare_digest(self.secret_hash, hash_api_key_secret(secret))


class PersonEmail(models.Model):
    """One of a person's email addresses, kept as rows so SCIM filters can query them."""

    person = models.ForeignKey(Person, on_delete=models.CASCADE, related_name="email_addresses")
    value = models.CharField(max_length=320)
    type = models.CharField(max_length=32, blank=True)
    primary = models.BooleanField(default=False)

    class Meta:
        indexes = [models.Index(Lower("value"), name="person_email_value_ci_idx")]

    def __str__(self) -> str:
        return self.value


class IdentityEvent(models.Model):
    """Something that happened to a person, for lifecycle automation to consume.

    Written in the same transaction as the change it describes (an outbox):
    ``processed_at`` stays empty until a consumer has acted on it.
    """

    class Kind(models.TextChoices):
        CREATED = "created", "Created"
        UPDATED = "updated", "Updated"
        DEACTIVATED = "deactivated", "Deactivated"
        REACTIVATED = "reactivated", "Reactivated"
        DELETED = "deleted", "Deleted"
        JOINED_TEAM = "joined_team", "Joined a team"
        LEFT_TEAM = "left_team", "Left a team"

    person = models.ForeignKey(Person, on_delete=models.CASCADE, related_name="identity_events")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    team = models.ForeignKey(Team, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    team_name = models.CharField(max_length=255, blank=True)
    changes = models.JSONField(default=dict, blank=True)
    source = models.CharField(max_length=10, choices=Source.choices, default=Source.LOCAL)
    occurred_at = models.DateTimeField(auto_now_add=True, db_index=True)
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-occurred_at", "-id"]
        indexes = [models.Index(fields=["processed_at", "id"], name="identity_event_outbox_idx")]

    def __str__(self) -> str:
        return f"{self.person_id} {self.kind}"


class SecondFactor(models.Model):
    """A person's authenticator app (TOTP, RFC 6238), asked for after the password.

    Enrolment keeps a secret unconfirmed until the first code from the app matches;
    ``last_step`` is the time step of the last code taken, so a code is never taken twice.
    """

    person = models.OneToOneField(Person, on_delete=models.CASCADE, related_name="second_factor")
    secret = EncryptedTextField()
    confirmed_at = models.DateTimeField(null=True, blank=True)
    last_step = models.BigIntegerField(default=-1)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"second factor of {self.person_id}"


class RecoveryCode(models.Model):
    """A single-use code that stands in for the authenticator app; only its hash is kept."""

    factor = models.ForeignKey(SecondFactor, on_delete=models.CASCADE, related_name="recovery_codes")
    code_hash = models.CharField(max_length=64)
    used_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"recovery code {self.pk}"
