"""The Settings form."""

from typing import Any

from django import forms

from console.core.models import ConsoleSettings
from console.web.services import SIGN_IN_FIELDS, settings_problems


class ConsoleSettingsForm(forms.ModelForm):
    extraction_interval_minutes = forms.IntegerField(
        min_value=5,
        max_value=7 * 24 * 60,
        label="Extraction interval (minutes)",
        help_text="How often each integration is read, unless it overrides this (5 minutes to 7 days).",
    )

    oidc_client_secret = forms.CharField(
        required=False,
        label="Client secret",
        widget=forms.PasswordInput(attrs={"autocomplete": "off"}),
        help_text="Write-only. Leave empty to keep the stored secret.",
    )

    class Meta:
        model = ConsoleSettings
        fields = ["scim_provisioning_enabled", "extraction_interval_minutes", *SIGN_IN_FIELDS]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if not cleaned.get("oidc_client_secret"):
            # Left empty: the stored secret stays (the field never shows it).
            cleaned["oidc_client_secret"] = self.instance.oidc_client_secret
        values = {name: cleaned[name] for name in self.fields if name in cleaned}
        for name, problem in settings_problems(current=self.instance, values=values).items():
            if name in self.fields and name not in self.errors:
                self.add_error(name, problem)
        return cleaned

    @property
    def changed_data(self) -> list[str]:
        changed = super().changed_data
        if "oidc_client_secret" in changed and not self.data.get(self.add_prefix("oidc_client_secret")):
            changed = [name for name in changed if name != "oidc_client_secret"]
        return changed
