"""The integration form, in sections: credentials are write-only (blank keeps what is stored),
limits are checked against integrations/limits.py, and what is wrong beyond a value's shape by
integrations.services, as the API checks them. Saving is the services' (the views call them)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.validators import MaxValueValidator, MinValueValidator
from django.utils.html import format_html

from integrations import catalog
from integrations.limits import LIMITS
from integrations.models import (
    CORRELATION_RULE_WORDS,
    CORRELATION_RULES,
    INTERVAL_LONGEST,
    INTERVAL_TOO_LONG,
    INTERVAL_TOO_SHORT,
    Integration,
)
from integrations.services import INTEGRATION_FIELDS, integration_input_problems

# Provisioning limits a request may leave out, keeping what is set.
KEPT_WHEN_LEFT_OUT = ("membership_chunk_size", "mass_change_max_accounts", "mass_change_max_percent")

# The form's sections, in order: (key, legend, fields). A catalog template's placeholder fields
# follow the base URL; a field named nowhere goes in the first section.
FIELDSETS: list[tuple[str, str, list[str]]] = [
    (
        "connection",
        "Connection",
        ["name", "kind", "application_type", "base_url", "users_endpoint", "groups_endpoint", "ca_certificate"],
    ),
    ("authentication", "Authentication", ["auth_type", "bearer_token", "basic_username", "basic_password"]),
    (
        "provisioning",
        "Provisioning",
        [
            "enabled",
            "provisioning_enabled",
            "supports_hard_delete",
            "discover_extensions",
            "extraction_interval_minutes",
            "mass_change_max_accounts",
            "mass_change_max_percent",
            "correlation_rules",
        ],
    ),
    (
        "limits",
        "Limits",
        [
            "timeout_seconds",
            "page_size",
            "rate_limit_per_second",
            "rate_limit_burst",
            "max_concurrency",
            "membership_chunk_size",
        ],
    ),
]
# Which authentication method each credential field belongs to (only the chosen one's show).
AUTH_METHOD_OF = {"bearer_token": "bearer", "basic_username": "basic", "basic_password": "basic"}
# Sent beside the rules' checkboxes: with none ticked, the rules were switched off, not left out.
RULES_SHOWN = "correlation_rules_shown"


class RuleCheckboxes(forms.CheckboxSelectMultiple):
    """The correlation rules' checkboxes, and the marker that says they were on the page."""

    def render(self, name: str, value: Any, attrs: Any = None, renderer: Any = None) -> Any:
        return format_html(
            '{}<input type="hidden" name="{}" value="1">', super().render(name, value, attrs, renderer), RULES_SHOWN
        )


class IntegrationForm(forms.ModelForm):
    base_url = forms.CharField(label="SCIM base URL", max_length=500)  # checked by integration_input_problems
    bearer_token = forms.CharField(
        required=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "off"}),
        help_text="Write-only: never shown again once saved.",
    )
    extraction_interval_minutes = forms.IntegerField(
        required=False,
        min_value=1,
        max_value=INTERVAL_LONGEST,
        label="Extraction interval (minutes)",
        error_messages={"min_value": INTERVAL_TOO_SHORT, "max_value": INTERVAL_TOO_LONG},
        help_text="Overrides the global interval when set; at least 1 minute.",
    )
    correlation_rules = forms.MultipleChoiceField(
        required=False,
        label="Tie accounts to people when",
        choices=[(rule, CORRELATION_RULE_WORDS[rule]) for rule in CORRELATION_RULES],
        widget=RuleCheckboxes,
        help_text="Tried in this order after every extraction; an account two people match is left to an admin.",
    )
    basic_password = forms.CharField(
        required=False,
        label="Password",
        widget=forms.PasswordInput(attrs={"autocomplete": "off"}),
        help_text="Write-only: never shown again once saved.",
    )

    class Meta:
        model = Integration
        fields = INTEGRATION_FIELDS
        widgets = {"ca_certificate": forms.Textarea(attrs={"rows": 4, "placeholder": "-----BEGIN CERTIFICATE-----"})}

    def __init__(self, *args: Any, template: catalog.Template | None = None, **kwargs: Any) -> None:
        self.template = template
        if template is not None and not (args and args[0] is not None) and "data" not in kwargs:
            kwargs.setdefault("initial", template.field_values())  # an empty form, filled in by the template
        super().__init__(*args, **kwargs)
        self.fields["base_url"].widget.attrs["placeholder"] = "https://app.example.com/scim/v2"
        for name in KEPT_WHEN_LEFT_OUT:
            self.fields[name].required = False
        self._apply_limits()
        self.fields["auth_type"].label = "Authentication method"
        stored = self.instance if self.instance.pk else None
        if stored is not None and stored.bearer_token:  # "leave empty to keep" only where something is kept
            self.fields["bearer_token"].help_text = "Write-only: a token is set. Leave empty to keep it."
        if stored is not None and stored.basic_password:
            self.fields["basic_password"].help_text = "Write-only: a password is set. Leave empty to keep it."
        if template is not None:
            self._add_placeholder_fields(template)

    def _apply_limits(self) -> None:
        """The bounds of integrations/limits.py, with their reasons, in place of the bare ones."""
        for name, bound in LIMITS.items():
            field = self.fields.get(name)
            if field is None:
                continue
            kept = [v for v in field.validators if not isinstance(v, (MinValueValidator, MaxValueValidator))]
            field.validators = [*kept, *bound.validators()]
            field.widget.attrs.update({"min": bound.least, "max": bound.most})

    def fieldsets(self) -> list[tuple[str, str, list[tuple[forms.BoundField, str]]]]:
        """The sections to show, each a (key, legend, [(bound field, authentication method or "")])."""
        placed = {name for _, _, names in FIELDSETS for name in names}
        sections = []
        for key, legend, names in FIELDSETS:
            order = list(names)
            if key == "connection":
                extra = [n for n in self.fields if n not in placed]  # the template's placeholders
                at = order.index("base_url") + 1
                order = order[:at] + extra + order[at:]
            rows = [(self[name], AUTH_METHOD_OF.get(name, "")) for name in order if name in self.fields]
            sections.append((key, legend, rows))
        return sections

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
        self.fields["base_url"].help_text = "Its {placeholders} are filled in from the fields below it."
        order = list(self.fields)
        extra = [f"template_{p.key}" for p in template.placeholders]
        at = order.index("base_url") + 1
        self.order_fields([name for name in order[:at] if name not in extra] + extra + order[at:])

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if self.template is not None and data.get("base_url"):
            self._fill_base_url(data)
        stored = self.instance
        for name in KEPT_WHEN_LEFT_OUT:  # left out of the request: the current (or default) value
            if data.get(name) is None and name not in self.errors:
                data[name] = getattr(stored, name)
        if RULES_SHOWN not in self.data:  # left out of the request: the current (or default) rules
            data["correlation_rules"] = stored.correlation_rules
        elif "correlation_rules" in data:
            data["correlation_rules"] = [rule for rule in CORRELATION_RULES if rule in data["correlation_rules"]]
        checked = {name: value for name, value in data.items() if name not in self.errors}
        for problem in integration_input_problems(fields=checked, integration=stored if stored.pk else None):
            if problem.field not in self.errors:
                self.add_error(problem.field, problem.message)
        return data

    def validate_unique(self) -> None:
        """Not here: a name taken is the services' refusal (a Conflict), shown on the name field."""

    def integration_fields(self) -> dict[str, Any]:
        """The clean values, as integration_create and integration_update take them."""
        return {name: self.cleaned_data[name] for name in INTEGRATION_FIELDS if name in self.cleaned_data}

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
            data.pop("base_url", None)  # with its placeholders: nothing to check yet
            return
        data["base_url"] = url
