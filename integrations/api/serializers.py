"""API shapes for integrations. Credentials are write-only: only whether each is set shows."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from console.accounts.access import acting_person
from console.core.pagination import PageFieldsSerializer
from integrations import catalog, dialect
from integrations.limits import LIMITS
from integrations.models import (
    CORRELATION_RULES,
    INTERVAL_LONGEST,
    INTERVAL_TOO_LONG,
    INTERVAL_TOO_SHORT,
    ExtensionAttribute,
    ExtractionRun,
    Integration,
    TargetGroup,
    TargetUser,
)
from integrations.oaa import PayloadError, provider_configuration_parse
from integrations.selectors import account_status
from integrations.services import (
    INTEGRATION_FIELDS,
    integration_changeable,
    integration_create,
    integration_input_problems,
    integration_update,
)


class DialectRowSerializer(serializers.Serializer[dict[str, Any]]):
    """One capability of an integration's dialect profile (integrations/dialect.py ``rows``)."""

    # ``label`` and ``source`` are Field attributes too: the metaclass takes the declared fields
    # out of the class, which mypy does not know.
    key = serializers.CharField()
    label = serializers.CharField()  # type: ignore[assignment]
    state = serializers.CharField(help_text="Works, Refused, Not known yet, or Holds id / Holds userName.")
    works = serializers.JSONField(help_text="true, false, null (not known), or the value (member_reference).")
    console_does = serializers.CharField()
    source = serializers.CharField(  # type: ignore[assignment]
        help_text="Probe, Catalog template, Learned from a refusal; empty when unknown."
    )
    at = serializers.CharField(allow_null=True)
    note = serializers.CharField()


class IntegrationSerializer(serializers.ModelSerializer[Integration]):
    """An integration's settings; saving is integration_create and integration_update, which refuse
    what is wrong beyond a value's shape (the same checks as the form's)."""

    base_url = serializers.CharField(max_length=500)  # checked by integration_input_problems
    bearer_token = serializers.CharField(write_only=True, required=False, allow_blank=True, trim_whitespace=True)
    basic_password = serializers.CharField(write_only=True, required=False, allow_blank=True, trim_whitespace=False)
    extraction_interval_minutes = serializers.IntegerField(
        required=False,
        allow_null=True,
        min_value=1,
        max_value=INTERVAL_LONGEST,
        error_messages={"min_value": INTERVAL_TOO_SHORT, "max_value": INTERVAL_TOO_LONG},
        help_text="Overrides the global interval when set; at least 1 minute.",
    )
    correlation_rules = serializers.ListField(
        child=serializers.ChoiceField(choices=CORRELATION_RULES),
        required=False,
        help_text="Which rules tie accounts to people after every extraction, tried in the order "
        "externalId, userName, email. All three by default.",
    )
    bearer_token_set = serializers.SerializerMethodField()
    basic_password_set = serializers.SerializerMethodField()
    dialect = serializers.SerializerMethodField(
        help_text="The dialect profile: each capability the console relies on, whether the application "
        "accepts its standard form, what the console does instead, and who found out (probe, catalog "
        "template, learned from a refusal, the application's ServiceProviderConfig) when."
    )
    template = serializers.CharField(
        write_only=True,
        required=False,
        allow_blank=True,
        help_text="On creation: the slug of a catalog template (GET /api/v1/integration-templates/), whose "
        "values fill in what the request leaves out.",
    )
    template_values = serializers.DictField(
        child=serializers.CharField(),
        write_only=True,
        required=False,
        help_text='The values of the template\'s base URL placeholders, e.g. {"directory_id": "…"}.',
    )

    class Meta:
        model = Integration
        fields = [
            "id",
            *INTEGRATION_FIELDS,
            "bearer_token_set",
            "basic_password_set",
            "credentials_changed_at",
            "connection_status",
            "connection_checked_at",
            "connection_error",
            "capabilities",
            "dialect",
            "dialect_probed_at",
            "template",
            "template_values",
            "catalog_template",
            "rate_limit_learned_at",
            "rate_limit_learned_note",
            "created_at",
            "updated_at",
        ]
        read_only_fields = [
            "id",
            "credentials_changed_at",
            "connection_status",
            "connection_checked_at",
            "connection_error",
            "capabilities",
            "dialect_probed_at",
            "catalog_template",
            "rate_limit_learned_at",
            "rate_limit_learned_note",
            "created_at",
            "updated_at",
        ]
        # The form's bounds and reasons (integrations/limits.py), so both refuse the same values.
        extra_kwargs = {
            name: {
                "min_value": bound.least,
                "max_value": bound.most,
                # DRF formats these with str.format, then with % (a literal one is doubled).
                "error_messages": {
                    "min_value": bound.too_small.replace("%", "%%"),
                    "max_value": bound.too_large.replace("%", "%%"),
                },
            }
            for name, bound in LIMITS.items()
        }

    def get_bearer_token_set(self, integration: Integration) -> bool:
        return bool(integration.bearer_token)

    def get_basic_password_set(self, integration: Integration) -> bool:
        return bool(integration.basic_password)

    @extend_schema_field(DialectRowSerializer(many=True))
    def get_dialect(self, integration: Integration) -> list[dict[str, Any]]:
        return dialect.rows(integration)

    def to_internal_value(self, data: Any) -> Any:
        """With ``template``: what the request leaves out comes from the template, and the base URL's
        placeholders are filled in from ``template_values``. A deleted integration is refused (409)
        before its values are read."""
        if self.instance is not None:
            integration_changeable(self.instance)
        slug = data.get("template") if hasattr(data, "get") else None
        if not slug:
            return super().to_internal_value(data)
        if self.instance is not None:
            raise serializers.ValidationError({"template": ["A template applies only when an integration is added."]})
        template = catalog.get(str(slug))
        if template is None:
            known = ", ".join(t.slug for t in catalog.templates())
            raise serializers.ValidationError({"template": [f"There is no template {slug!r}; known: {known}."]})
        values = data.get("template_values") or {}
        if not isinstance(values, dict):
            raise serializers.ValidationError(
                {"template_values": ['An object of the placeholders\' values, e.g. {"directory_id": "…"}.']}
            )
        given = data.dict() if hasattr(data, "dict") else dict(data)
        filled = {**template.field_values(), **given}
        try:
            filled["base_url"] = catalog.fill(str(filled["base_url"]), values, template=template)
        except catalog.TemplateValuesError as exc:
            raise serializers.ValidationError({"template_values": exc.errors}) from None
        return super().to_internal_value(filled)

    def create(self, validated_data: dict[str, Any]) -> Integration:
        slug = validated_data.pop("template", "")
        validated_data.pop("template_values", None)
        request = self.context["request"]
        return integration_create(
            actor=acting_person(request),
            fields=validated_data,
            template=catalog.get(slug) if slug else None,
            request=request,
        )

    def update(self, instance: Integration, validated_data: dict[str, Any]) -> Integration:
        validated_data.pop("template", None)
        validated_data.pop("template_values", None)
        request = self.context["request"]
        return integration_update(
            actor=acting_person(request), integration=instance, fields=validated_data, request=request
        )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        problems: dict[str, list[str]] = {}
        for problem in integration_input_problems(fields=attrs, integration=self.instance):
            problems.setdefault(problem.field or "non_field_errors", []).append(problem.message)
        if problems:
            raise serializers.ValidationError(problems)
        return attrs


class ExtractionRunSerializer(serializers.ModelSerializer[ExtractionRun]):
    class Meta:
        model = ExtractionRun
        fields = [
            "id",
            "trigger",
            "status",
            "queued_at",
            "started_at",
            "finished_at",
            "users_seen",
            "groups_seen",
            "created",
            "updated",
            "removed",
            "pages",
            "requests",
            "users_total",
            "groups_total",
            "heartbeat_at",
            "error",
            "warnings",
        ]
        read_only_fields = fields


SEEN_HELP = (
    "When the application last listed it: the last extraction it was in (extraction writes only "
    "what changed, so this is derived from the runs), or a later read by an action."
)


class OwnerSerializer(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    username = serializers.CharField()


class TargetUserSerializer(serializers.ModelSerializer[TargetUser]):
    last_seen_at = serializers.DateTimeField(source="seen_at", read_only=True, help_text=SEEN_HELP)
    owner = OwnerSerializer(read_only=True, allow_null=True, help_text="The person the account belongs to, or null.")
    owner_source = serializers.CharField(
        read_only=True, help_text="How the link was made: action, externalId, userName, email or manual; empty without."
    )

    class Meta:
        model = TargetUser
        fields = [
            "id",
            "remote_id",
            "user_name",
            "display_name",
            "email",
            "external_id",
            "active",
            "resource",
            "first_seen_at",
            "last_seen_at",
            "removed_at",
            "owner",
            "owner_source",
            "owner_linked_at",
        ]
        read_only_fields = fields


class ApplicationSerializer(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    name = serializers.CharField()


class MembershipWhySerializer(serializers.Serializer[Any]):
    group = serializers.CharField(help_text="The group's name in the application.")
    why = serializers.CharField(help_text="Why the person is in it, in one line.")


class PersonAccountSerializer(TargetUserSerializer):
    """One of a person's accounts, with its application and the names of its groups there."""

    integration = serializers.SerializerMethodField()
    status = serializers.SerializerMethodField(help_text="active, inactive or removed (from the application).")
    groups = serializers.ListField(child=serializers.CharField(), read_only=True)
    why = serializers.CharField(source="why.text", read_only=True, help_text="Why the person has it, in one line.")
    memberships = serializers.SerializerMethodField(help_text="Each of its groups, and why the person is in it.")

    class Meta(TargetUserSerializer.Meta):
        fields = ["integration", "status", "groups", "why", "memberships", *TargetUserSerializer.Meta.fields]
        read_only_fields = fields

    @extend_schema_field(MembershipWhySerializer(many=True))
    def get_memberships(self, user: TargetUser) -> list[dict[str, str]]:
        return [{"group": name, "why": why.text} for name, why in getattr(user, "group_rows", [])]

    @extend_schema_field(ApplicationSerializer)
    def get_integration(self, user: TargetUser) -> dict[str, Any]:
        return {"id": user.integration_id, "name": user.integration.name}

    def get_status(self, user: TargetUser) -> str:
        return account_status(user)


class TargetGroupSerializer(serializers.ModelSerializer[TargetGroup]):
    last_seen_at = serializers.DateTimeField(source="seen_at", read_only=True, help_text=SEEN_HELP)

    class Meta:
        model = TargetGroup
        fields = [
            "id",
            "remote_id",
            "display_name",
            "external_id",
            "member_count",
            "first_seen_at",
            "last_seen_at",
            "removed_at",
        ]
        read_only_fields = fields


class ExtensionAttributeSerializer(serializers.ModelSerializer[ExtensionAttribute]):
    class Meta:
        model = ExtensionAttribute
        fields = ["id", "normalized_name", "scim_path", "schema_urn", "attribute_type", "multi_valued", "description"]
        read_only_fields = fields


class ProbeRequestSerializer(serializers.Serializer[dict[str, Any]]):
    writes = serializers.BooleanField(
        default=False,
        help_text="Also run the write checks, on a disposable user and group (lifecycle-console-probe-…) that "
        "the probe deletes afterwards (deactivates, and says so, where the application refuses the delete).",
    )


class ProbeStateSerializer(serializers.Serializer[dict[str, Any]]):
    """The latest probe of an integration, as its worker left it."""

    state = serializers.ChoiceField(choices=["queued", "running", "succeeded", "failed", "lost"])
    active = serializers.BooleanField(help_text="Queued or running.")
    writes = serializers.BooleanField()
    requested_by = serializers.CharField()
    queued_at = serializers.CharField()
    started_at = serializers.CharField(allow_null=True)
    finished_at = serializers.CharField(allow_null=True)
    step = serializers.CharField()
    done = serializers.IntegerField()
    total = serializers.IntegerField()
    summary = serializers.CharField()
    error = serializers.CharField()
    report = serializers.JSONField(
        allow_null=True,
        help_text="found, notes, unsettled (capability: why not settled), remarks (what became of the test "
        "user and group), requests by method, test_name.",
    )


class ProbeSerializer(serializers.Serializer[dict[str, Any]]):
    probe = ProbeStateSerializer(allow_null=True, help_text="The latest probe; null when none was run lately.")
    queued = serializers.BooleanField(required=False, help_text="POST: false when a probe was already under way.")
    dialect = DialectRowSerializer(many=True)
    dialect_probed_at = serializers.DateTimeField(allow_null=True)


class CustomProviderSerializer(serializers.Serializer[Any]):
    name = serializers.CharField(max_length=200)
    custom_template = serializers.ChoiceField(choices=["application"])
    provisioning = serializers.BooleanField()
    external_lifecycle_management_type = serializers.ChoiceField(choices=["SCIM"])
    configuration_json = serializers.JSONField(help_text="A JSON-encoded string (or an object) of SCIM settings.")

    def validate_configuration_json(self, value: Any) -> dict[str, Any]:
        try:
            return provider_configuration_parse(value)
        except PayloadError as exc:
            raise serializers.ValidationError(
                [f"{key}: {' '.join(messages)}" for key, messages in exc.fields.items()]
            ) from None


class MemberAccountSerializer(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    user_name = serializers.CharField()
    display_name = serializers.CharField()


class GroupMemberSerializer(serializers.Serializer[Any]):
    member_remote_id = serializers.CharField(help_text="The member as the group names it.")
    account = MemberAccountSerializer(allow_null=True, help_text="Its account, where the console read one.")


class GroupMembersSummarySerializer(serializers.Serializer[Any]):
    """What a group's members now, or at a past moment, are (``integrations.history.GroupAsOf``),
    without the members themselves."""

    group = serializers.SerializerMethodField()
    as_of = serializers.DateTimeField(source="known.at", help_text="The moment the list is of.")
    known = serializers.BooleanField(source="known.known", help_text="False before the history starts.")
    history_starts = serializers.DateTimeField(
        source="known.since", allow_null=True, help_text="The end of the first successful extraction."
    )
    existed = serializers.BooleanField(help_text="False before the group was first read.")
    removed = serializers.BooleanField(help_text="True while the group was gone from the application.")
    summary = serializers.CharField(source="words", help_text="What the list shows, in words.")
    count = serializers.SerializerMethodField(help_text="Its members then, every page.")

    @extend_schema_field(serializers.DictField())
    def get_group(self, found: Any) -> dict[str, Any]:
        group = found.group
        return {"id": group.pk, "remote_id": group.remote_id, "display_name": group.display_name}

    def get_count(self, found: Any) -> int:
        return len(found.members)


class GroupMembersSerializer(GroupMembersSummarySerializer, PageFieldsSerializer):
    """A group's members now, or at a past moment: the summary and one page of them (``results``)."""

    results = GroupMemberSerializer(many=True, help_text="One page of them, by user name, then remote id.")


class AccountThenSerializer(serializers.Serializer[Any]):
    """One of a person's accounts at a past moment: its status and groups then."""

    id = serializers.IntegerField(source="account.pk")
    integration = serializers.SerializerMethodField()
    user_name = serializers.CharField(source="account.user_name")
    remote_id = serializers.CharField(source="account.remote_id")
    status = serializers.CharField(help_text="active or inactive, then.")
    groups = serializers.SerializerMethodField(help_text="The names of its groups then.")

    @extend_schema_field(ApplicationSerializer)
    def get_integration(self, item: Any) -> dict[str, Any]:
        return {"id": item.account.integration_id, "name": item.account.integration.name}

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_groups(self, item: Any) -> list[str]:
        return [group.display_name for group in item.groups]


class HistoryUnknownSerializer(serializers.Serializer[Any]):
    integration = serializers.SerializerMethodField()
    history_starts = serializers.DateTimeField(allow_null=True)

    @extend_schema_field(ApplicationSerializer)
    def get_integration(self, pair: Any) -> dict[str, Any]:
        return {"id": pair[0].pk, "name": pair[0].name}

    def to_representation(self, instance: Any) -> dict[str, Any]:
        integration, known = instance
        since = serializers.DateTimeField().to_representation(known.since) if known.since else None
        return {"integration": {"id": integration.pk, "name": integration.name}, "history_starts": since}


class PersonAccountsAsOfSerializer(serializers.Serializer[Any]):
    """A person's accounts at a past moment (``integrations.history.PersonAsOf``)."""

    as_of = serializers.DateTimeField(source="at")
    summary = serializers.CharField(source="words", help_text="What the list shows, in words.")
    unknown = HistoryUnknownSerializer(
        many=True, help_text="Integrations where the person had an account whose history had not started then."
    )
    results = AccountThenSerializer(source="accounts", many=True)
