"""The Settings form."""

from django import forms

from console.web.models import ConsoleSettings


class ConsoleSettingsForm(forms.ModelForm):
    extraction_interval_minutes = forms.IntegerField(
        min_value=5,
        max_value=7 * 24 * 60,
        label="Extraction interval (minutes)",
        help_text="How often each integration is read, unless it overrides this (5 minutes to 7 days).",
    )

    class Meta:
        model = ConsoleSettings
        fields = ["scim_provisioning_enabled", "extraction_interval_minutes"]
