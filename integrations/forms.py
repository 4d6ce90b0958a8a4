"""The integration form: credentials are write-only (blank keeps what is stored)."""

from __future__ import annotations

import ssl
from typing import Any

from django import forms
from django.core.validators import URLValidator
from django.utils import timezone

from integrations import catalog
from integrations.models import INTERVAL_LONGEST, INTERVAL_TOO_LONG, INTERVAL_TOO_SHORT, Integration

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
        max_value=INTERVAL_LONGEST,
        label="Extraction interval (minutes)",
        error_messages={"min_value": INTERVAL_TOO_SHORT, "max_value": INTERVAL_TOO_LONG},
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

    def __init__(self, *args: Any, template: catalog.Template | None = None, **kwargs: Any) -> None:
        self.template = template
        if template is not None and not (args and args[0] is not None) and "data" not in kwargs:
            kwargs.setdefault("initial", template.field_values())  # an empty form, filled in by the template
        super().__init__(*args, **kwargs)
        self.fields["base_url"].widget.attrs["placeholder"] = "https://app.example.com/scim/v2"
        for name in KEPT_WHEN_LEFT_OUT:
            self.fields[name].required = False
        if template is not None:
            self._add_placeholder_fields(template)

    def _add_placeholder_fields(self, template: catalog.Template) -> None:
        """A field for each ``{placeholder}`` of the template's base URL, right after it; the URL's
        own check waits until they are filled in (``clean``)."""
        for placeholder in template.placeholders:
            self.fields[f"template_{placeholder.key}"] = forms.CharField(
                label=placeholder.label,
                max_length=200,
                required=False,  # needed while the base URL holds its placeholder (``clean`` says so)
                help_text=f"Replaces {{{placeholder.key}}} in the base URL. {placeholder.help}",
            )
        self.fields["base_url"].validators = []
        self.fields["base_url"].help_text = "Its {placeholders} are filled in from the fields below it."
        order = list(self.fields)
        extra = [f"template_{p.key}" for p in template.placeholders]
        at = order.index("base_url") + 1
        self.order_fields([name for name in order[:at] if name not in extra] + extra + order[at:])

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
        if self.template is not None and data.get("base_url"):
            self._fill_base_url(data)
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

    def _fill_base_url(self, data: dict[str, Any]) -> None:
        values = {p.key: data.get(f"template_{p.key}") for p in self.template.placeholders} if self.template else {}
        try:
            url = catalog.fill(data["base_url"], values, template=self.template)
        except catalog.TemplateValuesError as exc:
            for key, messages in exc.errors.items():
                name = f"template_{key}"
                if name in self.fields and name not in self.errors:
                    self.add_error(name, messages)
                elif name not in self.fields:
                    self.add_error("base_url", messages)
            return
        try:
            self.base_fields["base_url"].run_validators(url)
        except forms.ValidationError as exc:
            self.add_error("base_url", exc)
            return
        data["base_url"] = url

    def save(self, commit: bool = True) -> Integration:
        integration: Integration = super().save(commit=False)
        stored = Integration.objects.filter(pk=integration.pk).first() if integration.pk else None
        if stored is not None and "rate_limit_per_second" in self.changed_data:
            # An admin's limit replaces the one a 429 taught (integrations/rate_limits.py).
            integration.rate_limit_learned_at, integration.rate_limit_learned_note = None, ""
        for name in ("bearer_token", "basic_password"):
            new = self.cleaned_data.get(name)
            if new:
                setattr(integration, name, new)
                integration.credentials_changed_at = timezone.now()
            elif stored is not None:
                setattr(integration, name, getattr(stored, name))
        if commit:
            integration.save()
            if self.template is not None and stored is None:
                catalog.template_apply(integration=integration, template=self.template)
        return integration
