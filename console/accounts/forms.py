"""Forms for sign-in, people and API keys."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth import authenticate
from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.signals import user_login_failed
from django.core.exceptions import ValidationError
from django.utils import timezone

from console.accounts.models import Person, Role
from console.accounts.permissions import UI_PERMISSION
from console.accounts.throttling import sign_in_attempt, sign_in_succeeded
from console.core.display import time_zones
from console.core.request_meta import client_address


class SignInForm(AuthenticationForm):
    """Username and password, throttled per account and per address.

    A person with the right password but no console role is told so plainly, rather than
    being signed in to a console they cannot use.
    """

    error_messages = {
        **AuthenticationForm.error_messages,
        "invalid_login": (
            "The user name or password is not right. "
            "The user name is not case-sensitive; the password is (check Caps Lock)."
        ),
        "inactive": "This account is inactive.",
        "throttled": "Too many failed sign-ins. Try again in %(minutes)s minute(s).",
        "no_role": "Your account has no console role, so it cannot sign in here. "
        "Ask an administrator to give you a role (for example viewer).",
    }

    def clean(self) -> dict[str, Any]:
        username = (self.cleaned_data.get("username") or "").strip()
        password = self.cleaned_data.get("password")
        address = client_address(self.request) if self.request else None
        if username and password:
            # Counted before the password is checked: past the limit, it is never checked.
            verdict = sign_in_attempt(username=username, address=address)
            if not verdict.allowed:
                user_login_failed.send(
                    sender=__name__, credentials={"username": username}, request=self.request, reason="throttled"
                )
                raise ValidationError(
                    self.error_messages["throttled"],
                    code="throttled",
                    params={"minutes": max(1, round(verdict.retry_after_seconds / 60))},
                )
            self.user_cache = authenticate(self.request, username=username, password=password)
            if self.user_cache is None:
                raise self.get_invalid_login_error()
            sign_in_succeeded(username=username, address=address)
            if not self.user_cache.has_console_permission(UI_PERMISSION):
                user_login_failed.send(
                    sender=__name__, credentials={"username": username}, request=self.request, reason="no console role"
                )
                raise ValidationError(self.error_messages["no_role"], code="no_role")
        return self.cleaned_data


PERSON_FORM_FIELDS = [
    "username",
    "given_name",
    "family_name",
    "display_name",
    "email",
    "title",
    "external_id",
    "employee_number",
    "department",
    "division",
    "organization",
    "cost_center",
    "manager",
]


class PersonForm(forms.ModelForm):
    class Meta:
        model = Person
        fields = PERSON_FORM_FIELDS

    def clean_username(self) -> str:
        username: str = self.cleaned_data["username"].strip()
        clash = Person.objects.filter(username__iexact=username)
        if self.instance.pk:
            clash = clash.exclude(pk=self.instance.pk)
        if clash.exists():
            raise ValidationError("A person with this user name already exists (user names ignore case).")
        return username


class PersonCreateForm(PersonForm):
    password = forms.CharField(
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        required=False,
        help_text="Leave empty for a person who does not sign in with a password.",
    )
    roles = forms.ModelMultipleChoiceField(
        queryset=Role.objects.all(), required=False, widget=forms.CheckboxSelectMultiple
    )


class TimeZoneForm(forms.Form):
    """The zone a person's pages show times in; empty keeps the default."""

    time_zone = forms.ChoiceField(
        label="Time zone",
        required=False,
        help_text="Every time on the console's pages shows in this zone, with its name.",
    )

    def __init__(self, *args: Any, default: str = "UTC", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["time_zone"]
        assert isinstance(field, forms.ChoiceField)
        field.choices = [("", f"Default ({default})"), *((zone, zone.replace("_", " ")) for zone in time_zones())]


class PersonRolesForm(forms.Form):
    roles = forms.ModelMultipleChoiceField(
        queryset=Role.objects.all(), required=False, widget=forms.CheckboxSelectMultiple, label="Direct roles"
    )


class ApiKeyCreateForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="What the key is for, e.g. 'Okta provisioning'.")
    expires_at = forms.DateTimeField(
        required=False,
        label="Expires",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
        help_text="Optional. The key stops working then.",
    )
    owner = forms.ModelChoiceField(
        queryset=Person.objects.filter(is_active=True),
        required=False,
        to_field_name="username",
        help_text="Admins only: make the key for someone else (a service account).",
    )

    def __init__(self, *args: Any, can_choose_owner: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not can_choose_owner:
            del self.fields["owner"]

    def clean_expires_at(self) -> Any:
        value = self.cleaned_data.get("expires_at")
        if value is not None and value <= timezone.now():
            raise ValidationError("The expiry must be in the future.")
        return value


class TeamRolesForm(forms.Form):
    roles = forms.ModelMultipleChoiceField(
        queryset=Role.objects.all(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label="Roles this team grants",
    )


class TeamCreateForm(forms.Form):
    name = forms.CharField(max_length=255)
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False)
    roles = forms.ModelMultipleChoiceField(
        queryset=Role.objects.all(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label="Roles this team grants",
    )


class TeamMemberAddForm(forms.Form):
    username = forms.CharField(max_length=255, label="User name", help_text="The person to add to the team.")

    def clean_username(self) -> Person:
        username = self.cleaned_data["username"].strip()
        person = Person.objects.filter(username__iexact=username, removed_at__isnull=True).first()
        if person is None:
            raise ValidationError(f"Nobody has the user name {username!r}.")
        return person
