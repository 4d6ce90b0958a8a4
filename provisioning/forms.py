"""The forms of provisioning's pages: requesting an action (one, or one per account in bulk),
deciding one, asking for access, and an integration's transformers and approval policies.
The API's serializers take the same input; what is valid beyond its shape is the services' to say."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django import forms
from django.http import QueryDict
from django.utils import timezone

from console.accounts.models import Person
from integrations.filters import TargetUserFilterSet
from integrations.models import Integration, TargetGroup, TargetUser
from provisioning.models import AccessRequest, ActionType
from provisioning.selectors import parameters_resolved

CHOOSE_AN_INTEGRATION = {"required": "Choose an integration.", "invalid_choice": "Choose an integration."}

# "All N matching" on the Users tab: at most this many accounts in one bulk request.
BULK_MATCHING_LIMIT = 5_000


def names_in(text: str) -> list[str]:
    """Names typed one per line or comma separated."""
    return [name.strip() for name in text.replace(",", "\n").splitlines() if name.strip()]


class DecisionForm(forms.Form):
    """Approve or reject: a comment (a rejection must say why; the service refuses one that does not)."""

    comment = forms.CharField(required=False, strip=False)


class ActionRequestForm(forms.Form):
    """One action, from a person, account or group page. Members to add or remove are named by
    user name (or remote id), one per line or comma separated. An account or group of another
    integration is the request's to refuse, as the API's is."""

    integration = forms.ModelChoiceField(Integration.objects.all(), error_messages=CHOOSE_AN_INTEGRATION)
    action_type = forms.CharField(required=False)
    person = forms.ModelChoiceField(Person.objects.all(), required=False)
    target_user = forms.ModelChoiceField(TargetUser.objects.all(), required=False)
    target_group = forms.ModelChoiceField(TargetGroup.objects.all(), required=False)
    display_name = forms.CharField(required=False, strip=False)
    add = forms.CharField(required=False, strip=False)
    remove = forms.CharField(required=False, strip=False)

    @staticmethod
    def members_named(data: Mapping[str, Any]) -> int | None:
        """How many accounts a change of members names (to confirm it), or None when it is not one."""
        if "add" not in data and "remove" not in data:
            return None
        return len(names_in(data.get("add", ""))) + len(names_in(data.get("remove", "")))

    def parameters(self) -> dict[str, Any]:
        """The action's parameters, as ``action_request`` takes them (members by remote id)."""
        data = self.cleaned_data
        parameters: dict[str, Any] = {}
        if data["display_name"]:
            parameters["display_name"] = data["display_name"]
        if self.members_named(self.data) is not None:
            parameters["add"] = names_in(data["add"])
            parameters["remove"] = names_in(data["remove"])
        return parameters_resolved(
            integration=data["integration"], action_type=data["action_type"], parameters=parameters
        )


class AccountIdsField(forms.Field):
    """Account ids ticked in a table; what is not an id is left out."""

    widget = forms.MultipleHiddenInput

    def to_python(self, value: Any) -> list[int]:
        return [int(v) for v in value or [] if str(v).isdecimal()]


class BatchRequestForm(forms.Form):
    """Bulk: one action per account ticked, or per account the Users tab's filters match."""

    integration = forms.ModelChoiceField(Integration.objects.all(), error_messages=CHOOSE_AN_INTEGRATION)
    action_type = forms.CharField(required=False)
    target_user = AccountIdsField(required=False)
    all_matching = forms.BooleanField(required=False)
    matching = forms.CharField(required=False, strip=False)
    dry_run = forms.BooleanField(required=False)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        integration = data.get("integration")
        if integration is None:
            return data
        if data.get("all_matching"):
            data["targets"] = self._matching(integration, data.get("matching", ""))
        else:
            data["targets"] = list(
                TargetUser.objects.filter(integration=integration, pk__in=data.get("target_user") or []).order_by(
                    "user_name"
                )
            )
        return data

    def _matching(self, integration: Integration, query: str) -> list[TargetUser]:
        """The accounts the Users tab's filters select (not removed ones), as its table lists them."""
        filterset = TargetUserFilterSet(
            QueryDict(query), queryset=integration.target_users.filter(removed_at__isnull=True), request=None
        )
        if not filterset.is_valid():
            raise forms.ValidationError("The filters are not valid: apply them again on the Users tab.")
        targets = list(filterset.qs.order_by("user_name", "id")[: BULK_MATCHING_LIMIT + 1])
        if len(targets) > BULK_MATCHING_LIMIT:
            raise forms.ValidationError(f"More than {BULK_MATCHING_LIMIT:,} accounts match: narrow the filters.")
        return targets


def end_field(label: str, *, required: bool) -> forms.DateTimeField:
    """An end date typed in the viewer's time zone (the one the console shows them)."""
    return forms.DateTimeField(
        required=required,
        label=label,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        error_messages={"invalid": "Enter a date and time, such as 2026-12-31 14:00."},
    )


class ZonedEndForm(forms.Form):
    """A form with an end date: its help names the viewer's time zone, in which it is read."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        zone = timezone.get_current_timezone_name()
        self.fields["ends_at"].help_text = f"In your time zone, {zone}. The membership is removed then."


class AccessRequestForm(ZonedEndForm):
    """Ask for an account to be added to (or removed from) a group, by the account's user name;
    access added may end at a date."""

    target_group = forms.ModelChoiceField(
        TargetGroup.objects.select_related("integration"),
        widget=forms.HiddenInput,
        error_messages={"required": "Choose a group.", "invalid_choice": "Choose a group."},
    )
    user_name = forms.CharField(required=False, label="Account (user name)")
    operation = forms.ChoiceField(
        choices=AccessRequest.Operation.choices,
        label="Change",
        error_messages={"required": "Choose add or remove.", "invalid_choice": "Choose add or remove."},
    )
    justification = forms.CharField(required=False, strip=False, widget=forms.Textarea(attrs={"rows": 2}))
    ends_at = end_field("Access ends (optional)", required=False)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        group = data.get("target_group")
        if group is None:
            return data
        name = data.get("user_name", "")
        data["target_user"] = None
        # The account of that name still in the application: the one spelled exactly so, else the
        # one whatever its case (userName is not case-exact). Two that answer to it are never guessed between.
        named = list(
            TargetUser.objects.filter(
                integration=group.integration, user_name__iexact=name, removed_at__isnull=True
            ).order_by("pk")[:10]
        )
        found = [account for account in named if account.user_name == name] or named
        if not found:
            self.add_error("user_name", f"No account named {name!r} in {group.integration.name}.")
        elif len(found) > 1:
            names = ", ".join(account.user_name for account in found)
            self.add_error(
                "user_name",
                f"{len(found)} accounts in {group.integration.name} answer to {name!r} ({names}): "
                "type the user name exactly as the application spells it.",
            )
        else:
            data["target_user"] = found[0]
        return data


class AccessExtendForm(ZonedEndForm):
    """Move approved access's end later."""

    ends_at = end_field("New end", required=True)


class TransformerForm(forms.Form):
    """A transformer row to add: the attribute it sets, where its value comes from, and the value.
    Whether they make a valid row is ``provisioning.transformers``' to say, for the page and the API alike."""

    attribute_name = forms.CharField(required=False)
    source = forms.CharField(required=False)
    value = forms.CharField(required=False, strip=False)


class TransformerMoveForm(forms.Form):
    """Move a transformer row one place."""

    direction = forms.ChoiceField(choices=[("up", "Up"), ("down", "Down")])

    @property
    def step(self) -> int:
        return -1 if self.cleaned_data["direction"] == "up" else 1


class ApprovalPoliciesForm(forms.Form):
    """For each action type: runs at once (``automatic``) or waits for an approver (``approval``);
    a type left out keeps its policy."""

    CHOICES = [("automatic", "Runs at once"), ("approval", "Waits for an approver")]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for action_type in ActionType:
            self.fields[action_type.value] = forms.ChoiceField(
                choices=self.CHOICES, required=False, label=action_type.label
            )

    def chosen(self) -> dict[str, bool]:
        """Each action type given, and whether it requires approval."""
        return {name: choice == "approval" for name, choice in self.cleaned_data.items() if choice}
