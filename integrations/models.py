"""Integrations (outbound SCIM applications) and what extraction last read from each."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Case, F, IntegerField, Value, When
from django.db.models.functions import Coalesce, Lower, Upper
from django.utils import timezone

from console.core.crypto import EncryptedTextField

# The rules that tie an account to a person, in the order they are tried (integrations.correlation).
CORRELATION_RULES = ["externalId", "userName", "email"]
CORRELATION_RULE_WORDS = {
    "externalId": "externalId is the person's external id",
    "userName": "userName is the person's user name",
    "email": "email is the person's primary email (case aside)",
}


def all_correlation_rules() -> list[str]:
    return list(CORRELATION_RULES)


INTERVAL_TOO_SHORT = "The interval is at least 1 minute (leave it empty for the global one)."
INTERVAL_LONGEST = 525_600  # minutes: a year
INTERVAL_TOO_LONG = "The interval is at most 525,600 minutes (a year)."


class LiveIntegrations(models.Manager["Integration"]):
    """Integrations that were not deleted. A deleted one is archived: its history stays readable."""

    def get_queryset(self) -> models.QuerySet[Integration]:
        return super().get_queryset().filter(archived_at__isnull=True)


NAME_TAKEN = "An integration with this name exists already."


class Integration(models.Model):
    """A SCIM 2.0 application the console reads and, through actions, changes.

    Deleting one archives it (``archived_at``): its credentials go; its actions, their calls,
    its runs and its audit trail stay, under its name. ``objects`` holds the live ones;
    ``all_objects`` the archived ones too.
    """

    class Kind(models.TextChoices):
        SCIM = "scim", "SCIM application"
        OAA = "oaa", "Custom application with external SCIM"

    class AuthType(models.TextChoices):
        BEARER = "bearer", "Bearer token"
        BASIC = "basic", "User name and password"

    kind = models.CharField(max_length=8, choices=Kind.choices, default=Kind.SCIM)
    name = models.CharField(max_length=200)  # unique among live integrations (Meta.constraints)
    application_type = models.CharField(max_length=100, blank=True, help_text="For custom applications (OAA).")
    base_url = models.URLField("SCIM base URL", max_length=500)
    auth_type = models.CharField(max_length=8, choices=AuthType.choices, default=AuthType.BEARER)
    # Write-only secrets (SECRET_FIELDS): encrypted at rest, never shown again after entry.
    bearer_token = EncryptedTextField(blank=True)
    basic_username = models.CharField("user name (basic authentication)", max_length=200, blank=True)
    basic_password = EncryptedTextField(blank=True)
    credentials_changed_at = models.DateTimeField(null=True, blank=True)
    ca_certificate = models.TextField("CA certificate (PEM)", blank=True)
    users_endpoint = models.CharField(max_length=200, default="Users")
    groups_endpoint = models.CharField(max_length=200, default="Groups")
    discover_extensions = models.BooleanField("Discover extension schemas", default=True)
    provisioning_enabled = models.BooleanField("Enable usage for Provisioning", default=False)
    enabled = models.BooleanField(default=True)
    timeout_seconds = models.PositiveIntegerField(default=30)
    page_size = models.PositiveIntegerField(default=100)
    rate_limit_per_second = models.FloatField(default=10)
    rate_limit_burst = models.PositiveIntegerField(default=20)
    max_concurrency = models.PositiveIntegerField(default=4)
    supports_hard_delete = models.BooleanField(default=False)
    # A batch that would deprovision or delete more accounts than either limit waits whole for approval.
    mass_change_max_accounts = models.PositiveIntegerField(
        "mass-change limit (accounts)",
        default=25,
        help_text="A bulk deprovision or delete of more accounts waits whole for approval.",
    )
    mass_change_max_percent = models.PositiveIntegerField(
        "mass-change limit (% of users)",
        default=10,
        validators=[MaxValueValidator(100)],
        help_text="The same, as a share of the integration's users.",
    )
    membership_chunk_size = models.PositiveIntegerField(
        "members per request",
        default=100,
        validators=[MinValueValidator(1), MaxValueValidator(10_000)],
        help_text="Members added or removed per PATCH request.",
    )
    correlation_rules = models.JSONField(
        "rules that tie accounts to people",
        default=all_correlation_rules,
        blank=True,
        help_text="Tried in this order after every extraction: externalId, userName, email.",
    )
    extraction_interval_minutes = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1, message=INTERVAL_TOO_SHORT)],
        help_text="Overrides the global interval when set.",
    )
    # Provisioning stops for an integration after too many failures in a row, until resumed.
    consecutive_failures = models.PositiveIntegerField(default=0)
    quarantined_at = models.DateTimeField(null=True, blank=True)
    quarantine_reason = models.TextField(blank=True)
    # The last connection test: what the application said it can do, or why it failed.
    connection_status = models.CharField(
        max_length=8, choices=[("unknown", "Not tested"), ("ok", "Connected"), ("failed", "Failed")], default="unknown"
    )
    connection_checked_at = models.DateTimeField(null=True, blank=True)
    connection_error = models.TextField(blank=True)
    capabilities = models.JSONField(default=dict, blank=True)
    # Which form of each SCIM request the application accepts (see integrations/dialect.py):
    # filled in by a probe, by the catalog template and by what actions and extractions learn.
    dialect = models.JSONField(default=dict, blank=True)
    dialect_probed_at = models.DateTimeField(null=True, blank=True)
    # The catalog template the integration was started from (integrations/catalog.py), if any.
    catalog_template = models.CharField(max_length=50, blank=True)
    # When a 429 taught the rate limit downward, and what it was before.
    rate_limit_learned_at = models.DateTimeField(null=True, blank=True)
    rate_limit_learned_note = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    archived_at = models.DateTimeField("deleted at", null=True, blank=True)
    # Since when its access history is complete (integrations.history): the end of its first
    # successful extraction; before it nothing is known.
    history_since = models.DateTimeField(null=True, blank=True)

    objects = LiveIntegrations()
    all_objects = models.Manager()  # noqa: DJ012 - both managers are declared after the fields

    # The integration's credentials, the one list of them: write-only in the form and the API,
    # replaced only through integration_credentials_replace, erased on delete, and struck out of
    # logs, call logs and audit details in every form (console/core/redaction.py).
    SECRET_FIELDS: ClassVar[tuple[str, ...]] = ("bearer_token", "basic_password")

    class Meta:
        ordering = ["name"]
        base_manager_name = "all_objects"  # an action of a deleted integration still reaches it
        constraints = [
            models.UniqueConstraint(
                fields=["name"],
                condition=models.Q(archived_at__isnull=True),
                name="integration_name_unique_live",
                violation_error_message=NAME_TAKEN,
            )
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def user_entity_type(self) -> str:
        return f"OAA.{self.application_type or 'custom'}.User" if self.kind == self.Kind.OAA else "SCIM.User"

    @property
    def group_entity_type(self) -> str:
        return f"OAA.{self.application_type or 'custom'}.Group" if self.kind == self.Kind.OAA else "SCIM.Group"


class ExtractionRun(models.Model):
    """One read of an integration: who asked, what it found, how it ended."""

    class Trigger(models.TextChoices):
        SCHEDULE = "schedule", "Schedule"
        MANUAL = "manual", "Manual"
        API = "api", "API"
        PUSH = "push", "Payload push"

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    integration = models.ForeignKey(Integration, on_delete=models.CASCADE, related_name="runs")
    trigger = models.CharField(max_length=10, choices=Trigger.choices)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    queued_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    users_seen = models.PositiveIntegerField(default=0)
    groups_seen = models.PositiveIntegerField(default=0)
    created = models.PositiveIntegerField(default=0)
    updated = models.PositiveIntegerField(default=0)
    removed = models.PositiveIntegerField(default=0)
    pages = models.PositiveIntegerField(default=0)
    requests = models.PositiveIntegerField(default=0)
    # What the server reported as totalResults, when it did: the progress bar's end.
    users_total = models.PositiveIntegerField(null=True, blank=True)
    groups_total = models.PositiveIntegerField(null=True, blank=True)
    # The worker's lease: renewed at the start and after every page. A running run whose
    # heartbeat is older than EXTRACTION_LEASE_SECONDS lost its worker.
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)
    warnings = models.JSONField(default=list, blank=True, help_text="What went wrong without failing the run.")

    class Meta:
        ordering = ["-queued_at", "-id"]
        constraints = [
            # Never two extractions of one integration at once.
            models.UniqueConstraint(
                fields=["integration"],
                condition=models.Q(status__in=["queued", "running"]),
                name="one_active_extraction_per_integration",
            )
        ]
        # The Runs tab's sorts: one row per run, so these cost extraction nothing that shows.
        indexes = [
            models.Index(fields=["integration", "queued_at", "id"], name="run_queued_idx"),
            models.Index(fields=["integration", "status", "id"], name="run_status_idx"),
            models.Index(fields=["integration", "users_seen", "id"], name="run_users_idx"),
            models.Index(fields=["integration", "groups_seen", "id"], name="run_groups_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.integration_id} {self.status}"

    @property
    def active(self) -> bool:
        return self.status in (self.Status.QUEUED, self.Status.RUNNING)

    @property
    def progress(self) -> Progress:
        """Where the bar stands: users read against the reported total, then groups."""
        if self.status == self.Status.QUEUED:
            return Progress("Waiting for a worker", 0, 1)
        if not self.active:
            return Progress("Done", 1, 1)
        if self.groups_total is not None or self.groups_seen:
            return Progress("Reading groups", self.groups_seen, _end(self.groups_seen, self.groups_total))
        if self.users_total is not None or self.users_seen:
            return Progress("Reading users", self.users_seen, _end(self.users_seen, self.users_total))
        return Progress("Starting", None, None)


@dataclass(frozen=True)
class Progress:
    """A run's progress bar; ``value`` None while nothing says how far along it is."""

    phase: str
    value: int | None
    max: int | None


def _end(seen: int, total: int | None) -> int | None:
    # Servers that report a wrong total are common: never show more read than the end.
    if total is None:
        return None
    return max(total, seen, 1)


# TARGET_REFERENCES: the foreign keys of target users, groups and memberships have no
# database constraint. These tables are the console's copy of what an application holds,
# written by extraction and the workers in batches of thousands of rows; checking each
# row's references at commit cost PostgreSQL more than writing the rows (3.3 s of an 8.5 s
# first read of 100,000 users, 10,000 groups and 250,000 memberships). Deleting through the
# ORM still cascades (and sets null) as each field says, and the writers take every key
# they store from rows of the same integration.
class HashIndexOnPostgres(models.Index):
    """A hash index on PostgreSQL, the usual B-tree elsewhere.

    For a column looked up by equality alone. A hash entry is the value's 4-byte hash, so
    an extraction inserting 250,000 memberships in random order spends less than on the
    B-tree of (integration, remote id) it replaces (0.4 s of 5 s for 100,000 users, measured).
    """

    def create_sql(self, model: Any, schema_editor: Any, using: str = "", **kwargs: Any) -> Any:
        if schema_editor.connection.vendor == "postgresql":
            using = " USING hash"
        return super().create_sql(model, schema_editor, using=using, **kwargs)


class ResourceField(models.JSONField):
    """A SCIM resource as read: PostgreSQL's ``json`` (the text, checked to be JSON) rather than ``jsonb``.

    Resources are stored whole and read back whole; nothing queries inside them. ``jsonb``
    would turn each into its binary form on the way in, which cost PostgreSQL a third of
    the time it spent storing 100,000 users (0.4 s of 1.5 s); ``json`` only checks it. psycopg
    hands ``json`` back already decoded, so a decoded value is taken as it is. Elsewhere
    (SQLite) this is the plain JSONField.
    """

    def db_type(self, connection: BaseDatabaseWrapper) -> str | None:
        if connection.vendor == "postgresql":
            return "json"
        return super().db_type(connection)

    def from_db_value(self, value: Any, expression: Any, connection: BaseDatabaseWrapper) -> Any:
        if value is not None and not isinstance(value, str):
            return value
        return super().from_db_value(value, expression, connection)


FINGERPRINT_HELP = "meta.version where the application gives one (prefixed v:), else a hash of the content."


class OwnerSource(models.TextChoices):
    """How an account was tied to its owner. The rules re-decide only their own links."""

    ACTION = "action", "an action of the console made or found it for them"
    EXTERNAL_ID = "externalId", "its externalId is their external id"
    USER_NAME = "userName", "its userName is their user name"
    EMAIL = "email", "its email is their primary email"
    MANUAL = "manual", "an admin chose the owner"


# Links the rules never undo: an admin's choice, and an account an action made for the person.
FIXED_OWNER_SOURCES = [OwnerSource.ACTION.value, OwnerSource.MANUAL.value]


# The Users tab's sorts that are not a column (integrations.tables), each served by an index
# on (integration, the expression, id) below: the expression is the same object in both, so
# the database sees the index's expression in the query. Each is total (never NULL), which
# keyset paging needs. Status as the tab shows it: Active, Inactive, then Removed.
TARGET_USER_STATUS_SORT = Case(
    When(removed_at__isnull=False, then=Value(2)),
    When(active=True, then=Value(0)),
    default=Value(1),
    output_field=IntegerField(),
)
# The owner's id (0: no owner): accounts grouped by owner, not ordered by the owner's name.
TARGET_USER_OWNER_SORT = Coalesce(F("owner"), Value(0))


class TargetUser(models.Model):
    """An account in an integration, as last extracted."""

    # Indexed by the constraints and indexes below, which all lead with the integration: an
    # index of its own, or of user_name alone, would only slow down the writes of extraction.
    # No database constraint (TARGET_REFERENCES): the ORM cascades.
    integration = models.ForeignKey(
        Integration, on_delete=models.CASCADE, related_name="target_users", db_index=False, db_constraint=False
    )
    remote_id = models.CharField(max_length=255)
    user_name = models.CharField(max_length=255)
    display_name = models.CharField(max_length=255, blank=True)
    email = models.CharField(max_length=320, blank=True)
    external_id = models.CharField(max_length=255, blank=True)
    active = models.BooleanField(default=True)
    # Read from the resource where it is written (integrations.extraction.department_and_title),
    # for the Users tab to show and sort by a plain index. A database default too: a COPY that
    # does not name them still stores a row.
    department = models.CharField(max_length=255, blank=True, default="", db_default="")
    title = models.CharField(max_length=255, blank=True, default="", db_default="")
    resource = ResourceField(default=dict)
    content_hash = models.CharField(max_length=64, help_text=FINGERPRINT_HELP)
    first_seen_at = models.DateTimeField(auto_now_add=True)
    last_seen_at = models.DateTimeField(default=timezone.now)
    removed_at = models.DateTimeField(null=True, blank=True, help_text="Gone from the application since then.")
    # The person the account belongs to (integrations.correlation), how the link was made and when.
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="target_users"
    )
    # A database default too: extraction inserts accounts with COPY, naming only what it read.
    owner_source = models.CharField(
        "linked by", max_length=16, choices=OwnerSource.choices, blank=True, default="", db_default=""
    )
    owner_linked_at = models.DateTimeField("linked at", null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["integration", "remote_id"], name="target_user_unique")]
        indexes = [
            models.Index(fields=["integration", "user_name", "id"], name="target_user_keyset_idx"),
            # The Users tab's other sorts (console.core.tables: the sort field, then the id).
            models.Index(fields=["integration", "display_name", "id"], name="target_user_display_idx"),
            models.Index(fields=["integration", "email", "id"], name="target_user_email_idx"),
            models.Index(F("integration"), TARGET_USER_STATUS_SORT, F("id"), name="target_user_status_sort_idx"),
            models.Index(fields=["integration", "department", "id"], name="target_user_dept_sort_idx"),
            models.Index(fields=["integration", "title", "id"], name="target_user_title_sort_idx"),
            models.Index(F("integration"), TARGET_USER_OWNER_SORT, F("id"), name="target_user_owner_sort_idx"),
            # Actions and filters find an account by userName, case-insensitively (``iexact``).
            models.Index(F("integration"), Upper("user_name"), name="target_user_name_ci_idx"),
            # Correlation (integrations.correlation) joins people on these keys.
            models.Index(F("integration"), Lower("email"), name="target_user_email_ci_idx"),
            models.Index(fields=["integration", "external_id"], name="target_user_external_id_idx"),
        ]

    def __str__(self) -> str:
        return self.user_name


class TargetGroup(models.Model):
    """A group in an integration, as last extracted."""

    integration = models.ForeignKey(
        Integration, on_delete=models.CASCADE, related_name="target_groups", db_index=False, db_constraint=False
    )
    remote_id = models.CharField(max_length=255)
    display_name = models.CharField(max_length=255)
    external_id = models.CharField(max_length=255, blank=True)
    resource = ResourceField(default=dict)
    content_hash = models.CharField(max_length=64, help_text=FINGERPRINT_HELP)
    member_count = models.PositiveIntegerField(default=0)
    first_seen_at = models.DateTimeField(auto_now_add=True)
    last_seen_at = models.DateTimeField(default=timezone.now)
    removed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["integration", "remote_id"], name="target_group_unique")]
        indexes = [
            models.Index(fields=["integration", "display_name", "id"], name="target_group_keyset_idx"),
            models.Index(fields=["integration", "member_count", "id"], name="target_group_size_idx"),
        ]

    def __str__(self) -> str:
        return self.display_name


class TargetMembership(models.Model):
    """Who is in which group of an integration, as last extracted."""

    integration = models.ForeignKey(
        Integration, on_delete=models.CASCADE, related_name="target_memberships", db_index=False, db_constraint=False
    )
    # The unique constraint below leads with the group.
    group = models.ForeignKey(
        TargetGroup, on_delete=models.CASCADE, related_name="memberships", db_index=False, db_constraint=False
    )
    member_remote_id = models.CharField(max_length=255)
    # The account, when the member is one this console has read. Not indexed: an account's
    # groups are found by its remote id (the index below), which also finds those of an
    # account not read yet.
    user = models.ForeignKey(
        TargetUser,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="memberships",
        db_index=False,
        db_constraint=False,
    )

    class Meta:
        constraints = [models.UniqueConstraint(fields=["group", "member_remote_id"], name="target_membership_unique")]
        # An account's groups in an integration, by its remote id (actions, access requests,
        # the account's page): equality only, so a hash index on PostgreSQL.
        indexes = [HashIndexOnPostgres(fields=["member_remote_id"], name="target_membership_member_hash")]

    def __str__(self) -> str:
        return f"{self.member_remote_id} in {self.group_id}"


class ExtensionAttribute(models.Model):
    """One attribute of an extension schema the application publishes at ``/Schemas``.

    The reverse index between a normalized name (what transformers and people type, for
    example ``urn_ietf_params_scim_schemas_extension_enterprise_2_0_user_department``) and
    the SCIM path it stands for (``urn:…:2.0:User:department``).
    """

    integration = models.ForeignKey(Integration, on_delete=models.CASCADE, related_name="extension_attributes")
    normalized_name = models.CharField(max_length=400)
    scim_path = models.CharField(max_length=400)
    schema_urn = models.CharField(max_length=300)
    attribute_type = models.CharField(max_length=20, blank=True)
    multi_valued = models.BooleanField(default=False)
    description = models.TextField(blank=True)

    class Meta:
        ordering = ["schema_urn", "scim_path"]
        constraints = [
            models.UniqueConstraint(fields=["integration", "normalized_name"], name="extension_attribute_unique")
        ]

    def __str__(self) -> str:
        return self.normalized_name


class ScimComparison(models.Model):
    """Where a custom application's pushed payload and its SCIM endpoints disagree.

    Names on one side only are kept (up to a limit) with exact counts.
    """

    integration = models.OneToOneField(Integration, on_delete=models.CASCADE, related_name="scim_comparison")
    compared_at = models.DateTimeField(default=timezone.now)
    users_only_in_payload = models.JSONField(default=list)
    users_only_in_scim = models.JSONField(default=list)
    groups_only_in_payload = models.JSONField(default=list)
    groups_only_in_scim = models.JSONField(default=list)
    counts = models.JSONField(default=dict)

    def __str__(self) -> str:
        return f"comparison of {self.integration_id}"

    @property
    def agrees(self) -> bool:
        return not any(self.counts.get(key) for key in self.counts)


class CorrelationConflict(models.Model):
    """An account the rules could not tie to one person: one row per candidate owner.

    Two people match the account, or the person matches several accounts of the
    integration. Nothing is linked until an admin chooses (a manual link); the rows are
    written afresh by every correlation.
    """

    integration = models.ForeignKey(Integration, on_delete=models.CASCADE, related_name="correlation_conflicts")
    target_user = models.ForeignKey(TargetUser, on_delete=models.CASCADE, related_name="correlation_conflicts")
    person = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    rule = models.CharField(max_length=16, choices=OwnerSource.choices)
    found_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["target_user_id", "person_id"]
        constraints = [models.UniqueConstraint(fields=["target_user", "person"], name="correlation_conflict_unique")]
        indexes = [models.Index(fields=["integration", "target_user"], name="correlation_conflict_idx")]

    def __str__(self) -> str:
        return f"{self.target_user_id} or {self.person_id}"


class ChangeSource(models.TextChoices):
    """What changed a membership, an account or a group in the console's picture (integrations.history)."""

    EXTRACTION = "extraction", "an extraction"
    ACTION = "action", "an action of the console"
    CORRELATION = "correlation", "the correlation rules"
    MANUAL = "manual", "an admin's choice"


class MembershipChange(models.Model):
    """A member added to or removed from a group, when, and by what (integrations.history).

    Written only where a membership changes: a first read writes none (the group's
    ``first_seen_at`` says since when it is known). No database constraints
    (TARGET_REFERENCES); ``action_id`` is a plain number, as actions live above this app.
    """

    integration = models.ForeignKey(
        Integration, on_delete=models.CASCADE, related_name="+", db_index=False, db_constraint=False
    )
    group = models.ForeignKey(
        TargetGroup, on_delete=models.CASCADE, related_name="membership_changes", db_index=False, db_constraint=False
    )
    member_remote_id = models.CharField(max_length=255)
    user = models.ForeignKey(
        TargetUser,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_index=False,
        db_constraint=False,
    )
    added = models.BooleanField(help_text="True: added to the group; false: removed from it.")
    at = models.DateTimeField(default=timezone.now)
    source = models.CharField(max_length=16, choices=ChangeSource.choices)
    run = models.ForeignKey(
        ExtractionRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_constraint=False
    )
    action_id = models.PositiveBigIntegerField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["group", "at", "id"], name="membership_change_group_idx"),
            models.Index(fields=["integration", "member_remote_id", "at"], name="membership_change_member_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.member_remote_id} {'added to' if self.added else 'removed from'} {self.group_id}"


class AccountChange(models.Model):
    """An account's state before and after a change of whether it is active, removed, or whose it is.

    The state at a past moment is the ``before`` of the first change after it
    (integrations.history). A first read writes none.
    """

    integration = models.ForeignKey(
        Integration, on_delete=models.CASCADE, related_name="+", db_index=False, db_constraint=False
    )
    target_user = models.ForeignKey(
        TargetUser, on_delete=models.CASCADE, related_name="changes", db_index=False, db_constraint=False
    )
    at = models.DateTimeField(default=timezone.now)
    source = models.CharField(max_length=16, choices=ChangeSource.choices)
    run = models.ForeignKey(
        ExtractionRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_constraint=False
    )
    action_id = models.PositiveBigIntegerField(null=True, blank=True)
    active_before = models.BooleanField()
    active_after = models.BooleanField()
    removed_before = models.BooleanField()
    removed_after = models.BooleanField()
    owner_before = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_constraint=False,
    )
    owner_after = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_constraint=False,
    )

    class Meta:
        indexes = [models.Index(fields=["target_user", "at", "id"], name="account_change_user_idx")]

    def __str__(self) -> str:
        return f"{self.target_user_id} at {self.at}"


class GroupChange(models.Model):
    """A group gone from its application (``removed``) or back in it, and when (integrations.history)."""

    integration = models.ForeignKey(
        Integration, on_delete=models.CASCADE, related_name="+", db_index=False, db_constraint=False
    )
    group = models.ForeignKey(
        TargetGroup, on_delete=models.CASCADE, related_name="changes", db_index=False, db_constraint=False
    )
    removed = models.BooleanField(help_text="True: gone from the application; false: read again.")
    at = models.DateTimeField(default=timezone.now)
    source = models.CharField(max_length=16, choices=ChangeSource.choices)
    run = models.ForeignKey(
        ExtractionRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_constraint=False
    )

    class Meta:
        indexes = [models.Index(fields=["group", "at", "id"], name="group_change_group_idx")]

    def __str__(self) -> str:
        return f"{self.group_id} {'removed' if self.removed else 'back'} at {self.at}"
