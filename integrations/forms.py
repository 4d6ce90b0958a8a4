"""The integration form: credentials are write-only (blank keeps what is stored)."""

from __future__ import annotations

import ssl
from typing import Any

from django import forms
from django.core.validators import URLValidator
from django.utils import timezone

from integrations.models import INTERVAL_TOO_SHORT, Integration

# Provisioning limits a request may leave out, keeping what is set.
KEPT_WHEN_LEFT_OUT = ("membership_chunk_size", "mass_change_max_accounts", "mass_change_max_percent")


class IntegrationForm(forms.ModelForm):
    base_url = forms.CharField(
        label="SCIM base URL",
        max_length=500,
        validators=[
            URLValidator(
                schemes=["http", "https"],
                message="The SCIM base URL must start with http:// or "
                "https:// and be a full address, e.g. https://app.example.com/scim/v2.",
            )
        ],
    )
    bearer_token = forms.CharField(
        required=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "off"}),
        help_text="Write-only. Leave empty to keep the stored token.",
    )
    extraction_interval_minutes = forms.IntegerField(
        required=False,
        min_value=1,
        label="Extraction interval (minutes)",
        error_messages={"min_value": INTERVAL_TOO_SHORT},
        help_text="Overrides the global interval when set; at least 1 minute.",
    )
    basic_password = forms.CharField(
        required=False,
        label="Password",
        widget=forms.PasswordInput(attrs={"autocomplete": "off"}),
        help_text="Write-only. Leave empty to keep the stored password.",
    )

    class Meta:
        model = Integration
        fields = [
            "name",
            "kind",
            "application_type",
            "base_url",
            "auth_type",
            "bearer_token",
            "basic_username",
            "basic_password",
            "ca_certificate",
            "users_endpoint",
            "groups_endpoint",
            "discover_extensions",
            "provisioning_enabled",
            "enabled",
            "timeout_seconds",
            "page_size",
            "rate_limit_per_second",
            "rate_limit_burst",
            "max_concurrency",
            "supports_hard_delete",
            "membership_chunk_size",
            "mass_change_max_accounts",
            "mass_change_max_percent",
            "extraction_interval_minutes",
        ]
        widgets = {"ca_certificate": forms.Textarea(attrs={"rows": 4, "placeholder": "-----BEGIN CERTIFICATE-----"})}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["base_url"].widget.attrs["placeholder"] = "https://app.example.com/scim/v2"
        for name in KEPT_WHEN_LEFT_OUT:
            self.fields[name].required = False

    def clean_ca_certificate(self) -> str:
        value: str = self.cleaned_data.get("ca_certificate") or ""
        if value.strip():
            try:
                ssl.create_default_context(cadata=value)
            except (ssl.SSLError, ValueError) as exc:
                raise forms.ValidationError(f"This is not a PEM certificate that parses ({exc}).") from None
        return value

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        stored = self.instance
        for name in KEPT_WHEN_LEFT_OUT:  # left out of the request: the current (or default) value
            if data.get(name) is None and name not in self.errors:
                data[name] = getattr(stored, name)
        token = data.get("bearer_token") or (stored.bearer_token if stored.pk else "")
        password = data.get("basic_password") or (stored.basic_password if stored.pk else "")
        if data.get("auth_type") == Integration.AuthType.BEARER and not token:
            self.add_error("bearer_token", "A bearer token is needed for bearer authentication.")
        if data.get("auth_type") == Integration.AuthType.BASIC and not (data.get("basic_username") and password):
            self.add_error("basic_password", "A user name and a password are needed for basic authentication.")
        return data

    def save(self, commit: bool = True) -> Integration:
        integration: Integration = super().save(commit=False)
        stored = Integration.objects.filter(pk=integration.pk).first() if integration.pk else None
        for name in ("bearer_token", "basic_password"):
            new = self.cleaned_data.get(name)
            if new:
                setattr(integration, name, new)
                integration.credentials_changed_at = timezone.now()
            elif stored is not None:
                setattr(integration, name, getattr(stored, name))
        if commit:
            integration.save()
        return integration
