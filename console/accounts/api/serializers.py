"""API shapes for people, roles, teams and keys."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from console.accounts.models import ApiKey, Person, Role, Team
from console.accounts.permissions import Perm
from console.accounts.selectors import person_effective_roles_explained
from console.accounts.services import PERSON_EDITABLE_FIELDS


class RoleSerializer(serializers.ModelSerializer[Role]):
    permissions = serializers.ListField(
        child=serializers.ChoiceField(choices=[p.value for p in Perm]), allow_empty=True
    )

    class Meta:
        model = Role
        fields = ["id", "name", "label", "description", "is_builtin", "permissions"]
        read_only_fields = ["id", "is_builtin"]


class PersonSerializer(serializers.ModelSerializer[Person]):
    roles = serializers.SlugRelatedField(slug_field="name", many=True, queryset=Role.objects.all(), required=False)
    manager = serializers.SlugRelatedField(
        slug_field="username", queryset=Person.objects.all(), required=False, allow_null=True
    )
    active = serializers.BooleanField(source="is_active", required=False)
    password = serializers.CharField(write_only=True, required=False, style={"input_type": "password"})

    class Meta:
        model = Person
        fields = [
            "id",
            "scim_id",
            *PERSON_EDITABLE_FIELDS,
            "active",
            "source",
            "roles",
            "password",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "scim_id", "source", "created_at", "updated_at"]

    def validate_username(self, value: str) -> str:
        clash = Person.objects.filter(username__iexact=value.strip())
        if self.instance is not None:
            clash = clash.exclude(pk=self.instance.pk)
        if clash.exists():
            raise serializers.ValidationError("A person with this user name already exists (user names ignore case).")
        return value.strip()


class PersonDetailSerializer(PersonSerializer):
    effective_roles = serializers.SerializerMethodField()

    class Meta(PersonSerializer.Meta):
        fields = [*PersonSerializer.Meta.fields, "effective_roles"]

    def get_effective_roles(self, person: Person) -> list[dict[str, Any]]:
        return [
            {"role": e.role.name, "direct": e.direct, "teams": e.via_teams}
            for e in person_effective_roles_explained(person=person)
        ]


class ApiKeySerializer(serializers.ModelSerializer[ApiKey]):
    owner = serializers.SlugRelatedField(
        slug_field="username", queryset=Person.objects.filter(is_active=True), required=False
    )
    status = serializers.CharField(read_only=True)

    class Meta:
        model = ApiKey
        fields = ["id", "name", "prefix", "owner", "status", "created_at", "last_used_at", "expires_at", "revoked_at"]
        read_only_fields = ["id", "prefix", "status", "created_at", "last_used_at", "revoked_at"]


class NewApiKeySerializer(ApiKeySerializer):
    key = serializers.CharField(read_only=True, help_text="The full key. It is shown only in this response.")

    class Meta(ApiKeySerializer.Meta):
        fields = [*ApiKeySerializer.Meta.fields, "key"]


class TeamSerializer(serializers.ModelSerializer[Team]):
    roles = serializers.SlugRelatedField(slug_field="name", many=True, queryset=Role.objects.all())
    member_count = serializers.IntegerField(read_only=True)

    class Meta:
        model = Team
        fields = ["id", "scim_id", "name", "external_id", "source", "roles", "member_count", "created_at", "updated_at"]
        read_only_fields = [
            "id",
            "scim_id",
            "name",
            "external_id",
            "source",
            "member_count",
            "created_at",
            "updated_at",
        ]


class TeamCreateSerializer(serializers.Serializer[Team]):
    name = serializers.CharField(max_length=255)
    description = serializers.CharField(required=False, allow_blank=True, default="")
    roles = serializers.SlugRelatedField(slug_field="name", many=True, queryset=Role.objects.all(), required=False)


class UserNameField(serializers.SlugRelatedField[Person]):
    """A person by user name, which compares case-insensitively everywhere in the console."""

    def to_internal_value(self, data: Any) -> Person:
        people = self.get_queryset()
        assert people is not None  # given at construction
        person = people.filter(username__iexact=str(data)).first()
        if person is None:
            self.fail("does_not_exist", slug_name=self.slug_field, value=str(data))
        return person


class TeamMembersChangeSerializer(serializers.Serializer[Any]):
    members = serializers.ListField(
        child=UserNameField(slug_field="username", queryset=Person.objects.filter(removed_at__isnull=True)),
        allow_empty=False,
        help_text="User names.",
    )


class TeamMemberSerializer(serializers.ModelSerializer[Person]):
    active = serializers.BooleanField(source="is_active")

    class Meta:
        model = Person
        fields = ["id", "username", "display_name", "active"]
