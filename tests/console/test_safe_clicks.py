"""Safe clicks: every action that changes an application asks once, in one style (a dialog the
script opens, a confirmation page without it), says what and how many, and records the reason."""

from __future__ import annotations

import re
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse

from console.accounts.models import Person, Team
from console.audit.models import AuditEvent
from integrations.models import Integration, TargetGroup, TargetUser
from provisioning.models import AccessRequest, Action, ActionState, Batch

pytestmark = pytest.mark.django_db


class _Forms(HTMLParser):
    """Each <form>: its attributes and its inputs' (name, value)."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict[str, object]] = []
        self._open: dict[str, object] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "form":
            self._open = {"attrs": dict(attrs), "inputs": []}
            self.forms.append(self._open)
        elif tag in ("input", "textarea", "button") and self._open is not None:
            fields = dict(attrs)
            self._open["inputs"].append((fields.get("name"), fields.get("value")))  # type: ignore[attr-defined]

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._open = None


def forms_posting_to(html: str, url: str) -> list[dict[str, object]]:
    parser = _Forms()
    parser.feed(html)
    return [f for f in parser.forms if f["attrs"].get("action") == url]  # type: ignore[attr-defined]


def assert_confirmed(html: str, url: str, count: str | None) -> None:
    found = forms_posting_to(html, url)
    assert found, f"no form posts to {url}"
    for form in found:
        attrs: dict[str, str] = form["attrs"]  # type: ignore[assignment]
        assert attrs.get("data-confirm"), f"the form posting to {url} does not ask first"
        if count is not None:
            assert attrs.get("data-confirm-count") == count, attrs
        assert ("confirm", "ask") in form["inputs"], "no confirmation page without the script"  # type: ignore[operator]
        assert "onsubmit" not in attrs
        assert "hx-confirm" not in attrs


@pytest.fixture
def app(db: None) -> Integration:
    return Integration.objects.create(
        name="Slack",
        base_url="http://127.0.0.1:9/scim/v2",
        bearer_token="t",
        provisioning_enabled=True,
        supports_hard_delete=True,
    )


def make_account(app: Integration, name: str) -> TargetUser:
    return TargetUser.objects.create(integration=app, remote_id=f"id-{name}", user_name=name, content_hash="x")


@pytest.fixture
def signed_in(make_person: Callable[..., Person]) -> Callable[[Person], Client]:
    def sign_in(person: Person) -> Client:
        client = Client()
        client.force_login(person)
        return client

    return sign_in


def test_no_browser_confirm_is_left_in_the_templates() -> None:
    templates = Path(settings.BASE_DIR) / "templates"
    for path in templates.rglob("*.html"):
        text = path.read_text()
        assert "hx-confirm" not in text, path
        assert not re.search(r"\bconfirm\(", text), path


def test_each_form_that_changes_an_application_carries_the_one_confirmation(
    app: Integration, make_person: Callable[..., Person], signed_in: Callable[[Person], Client]
) -> None:
    operator = make_person("operator", roles=["operator"])
    admin = signed_in(make_person("boss", roles=["admin"]))
    jane = make_account(app, "jane")
    make_account(app, "joe")
    group = TargetGroup.objects.create(integration=app, remote_id="g1", display_name="Engineers", content_hash="x")

    page = admin.get(reverse("target_user_detail", args=[app.pk, jane.pk])).content.decode()
    forms = forms_posting_to(page, reverse("action_request"))
    assert len(forms) == 2  # deprovision and delete, each asking
    assert_confirmed(page, reverse("action_request"), "1")
    assert "Deletes jane from Slack for good" in page

    users = admin.get(reverse("integration_users", args=[app.pk])).content.decode()
    assert_confirmed(users, reverse("batch_request"), None)
    assert 'data-confirm-count-from="selection"' in users
    assert re.search(r'name="dry_run" value="1" data-confirm-skip', users)  # a dry run changes nothing

    members = admin.get(reverse("target_group_detail", args=[app.pk, group.pk])).content.decode()
    assert_confirmed(members, reverse("action_request"), None)

    plan = admin.post(
        reverse("batch_request"),
        {"integration": app.pk, "action_type": "DEPROVISION_IDENTITY", "target_user": [jane.pk], "dry_run": "1"},
    ).content.decode()
    assert_confirmed(plan, reverse("batch_request"), "1")

    batch = Batch.objects.create(integration=app, action_type="DEPROVISION_IDENTITY", requested_by=operator)
    Action.objects.create(
        integration=app,
        action_type="DEPROVISION_IDENTITY",
        state=ActionState.SUCCEEDED,
        target_user=jane,
        batch=batch,
        subject="jane",
        result={"removed_from_groups": []},
    )
    done = admin.get(reverse("batch_detail", args=[batch.pk])).content.decode()
    assert_confirmed(done, reverse("batch_undo", args=[batch.pk]), "1")

    pending = Action.objects.create(
        integration=app,
        action_type="DELETE_IDENTITY",
        state=ActionState.PENDING_APPROVAL,
        target_user=jane,
        requested_by=operator,
        subject="jane",
    )
    detail = admin.get(reverse("action_detail", args=[pending.pk])).content.decode()
    assert_confirmed(detail, reverse("action_approve", args=[pending.pk]), "1")
    inbox = admin.get(reverse("approval_inbox")).content.decode()
    assert_confirmed(inbox, reverse("action_approve", args=[pending.pk]), "1")
    assert "data-confirm-skip>Reject</button>" in inbox  # rejecting changes nothing in the application

    held = Batch.objects.create(
        integration=app, action_type="DEPROVISION_IDENTITY", requested_by=operator, held_reason="mass change"
    )
    for account in (jane, TargetUser.objects.get(user_name="joe")):
        Action.objects.create(
            integration=app,
            action_type="DEPROVISION_IDENTITY",
            state=ActionState.PENDING_APPROVAL,
            target_user=account,
            batch=held,
            requested_by=operator,
            subject=account.user_name,
        )
    inbox = admin.get(reverse("approval_inbox")).content.decode()
    assert_confirmed(inbox, reverse("batch_approve", args=[held.pk]), "2")
    held_page = admin.get(reverse("batch_detail", args=[held.pk])).content.decode()
    assert_confirmed(held_page, reverse("batch_approve", args=[held.pk]), "2")

    access = AccessRequest.objects.create(
        integration=app, target_user=jane, target_group=group, operation="add", justification="x", requested_by=operator
    )
    access_page = admin.get(reverse("access_request_detail", args=[access.pk])).content.decode()
    assert_confirmed(access_page, reverse("access_request_approve", args=[access.pk]), "1")

    settings_page = admin.get(reverse("integration_settings", args=[app.pk])).content.decode()
    assert_confirmed(settings_page, reverse("integration_delete", args=[app.pk]), None)

    team = Team.objects.create(name="Finance")
    team_page = admin.get(reverse("team_detail", args=[team.pk])).content.decode()
    assert_confirmed(team_page, reverse("team_delete", args=[team.pk]), "0")


def test_without_the_script_a_confirmation_page_asks_first_then_the_reason_is_recorded(
    app: Integration, make_person: Callable[..., Person], signed_in: Callable[[Person], Client]
) -> None:
    operator = signed_in(make_person("operator", roles=["operator"]))
    jane = make_account(app, "jane")
    form = {
        "integration": app.pk,
        "target_user": jane.pk,
        "action_type": "DEPROVISION_IDENTITY",
        "confirm": "ask",
        "confirm_text": "Deactivates jane in Slack.",
        "confirm_count": "1",
        "confirm_label": "Deprovision",
        "reason": "",
    }

    asked = operator.post(reverse("action_request"), form)

    assert asked.status_code == 200
    page = asked.content.decode()
    assert "Deprovision?" in page
    assert "Deactivates jane in Slack." in page
    assert re.search(r"1 account\s*</strong> touched", page) or "<strong>1 account</strong> touched" in page
    assert not Action.objects.exists()  # nothing was requested yet
    again = forms_posting_to(page, reverse("action_request"))[0]
    fields = {name: value for name, value in again["inputs"] if name}  # type: ignore[attr-defined]
    assert fields["confirm"] == "done"
    assert fields["target_user"] == str(jane.pk)

    done = operator.post(reverse("action_request"), {**fields, "reason": "left the company on Friday"})

    assert done.status_code == 302
    action = Action.objects.get()
    event = AuditEvent.objects.get(verb="action.requested", target_id=str(action.pk))
    assert event.details["reason"] == "left the company on Friday"


def test_the_reason_of_a_bulk_request_an_undo_and_a_delete_is_recorded(
    app: Integration, make_person: Callable[..., Person], signed_in: Callable[[Person], Client]
) -> None:
    operator_person = make_person("operator", roles=["operator"])
    operator = signed_in(operator_person)
    admin = signed_in(make_person("boss", roles=["admin"]))
    accounts = [make_account(app, name) for name in ("amy", "ben", "cal")]
    app.mass_change_max_accounts, app.mass_change_max_percent = 10, 100
    app.save()

    operator.post(
        reverse("batch_request"),
        {
            "integration": app.pk,
            "action_type": "DEPROVISION_IDENTITY",
            "target_user": [a.pk for a in accounts],
            "confirm": "done",
            "reason": "contractors ended",
        },
    )
    batch = Batch.objects.get()
    assert AuditEvent.objects.get(verb="batch.requested").details["reason"] == "contractors ended"
    assert {e.details["reason"] for e in AuditEvent.objects.filter(verb="action.requested")} == {"contractors ended"}

    # Without the script the bulk request asks first, counting the accounts itself.
    asked = operator.post(
        reverse("batch_request"),
        {
            "integration": app.pk,
            "action_type": "DEPROVISION_IDENTITY",
            "target_user": [accounts[0].pk],
            "confirm": "ask",
        },
    )
    assert "<strong>1 account</strong> touched" in asked.content.decode()
    assert Batch.objects.count() == 1

    batch.actions.update(state=ActionState.SUCCEEDED, result={"removed_from_groups": []})
    operator.post(reverse("batch_undo", args=[batch.pk]), {"confirm": "done", "reason": "wrong list"})
    assert AuditEvent.objects.get(verb="batch.undo_requested").details["reason"] == "wrong list"

    pending = Action.objects.create(
        integration=app,
        action_type="DELETE_IDENTITY",
        state=ActionState.PENDING_APPROVAL,
        target_user=accounts[0],
        requested_by=operator_person,
        subject="amy",
    )
    admin.post(reverse("action_approve", args=[pending.pk]), {"confirm": "done", "comment": "HR ticket 42"})
    pending.refresh_from_db()
    assert pending.decision_comment == "HR ticket 42"
    assert AuditEvent.objects.filter(verb="action.approved", details__note="HR ticket 42").exists()

    admin.post(reverse("integration_delete", args=[app.pk]), {"confirm": "done", "reason": "moved to Teams"})
    assert AuditEvent.objects.get(verb="integration.deleted").details["reason"] == "moved to Teams"


def test_the_api_carries_a_reason_to_the_audit_record_of_the_request(
    app: Integration, make_person: Callable[..., Person], api_client_for: Callable[[Person], object]
) -> None:
    jane = make_account(app, "jane")
    client = api_client_for(make_person("operator", roles=["operator"]))

    answer = client.post(  # type: ignore[attr-defined]
        "/api/v1/actions/",
        {
            "integration": app.pk,
            "action_type": "DEPROVISION_IDENTITY",
            "target_user": jane.pk,
            "reason": "ticket 7",
        },
        format="json",
    )

    assert answer.status_code == 201, answer.content
    assert "reason" not in answer.json()  # write-only
    event = AuditEvent.objects.get(verb="action.requested")
    assert event.details["reason"] == "ticket 7"


def test_a_group_name_is_capped_alike_on_the_form_and_the_api(
    app: Integration, make_person: Callable[..., Person], api_client_for: Callable[[Person], object]
) -> None:
    client = api_client_for(make_person("operator", roles=["operator"]))

    answer = client.post(  # type: ignore[attr-defined]
        "/api/v1/actions/",
        {"integration": app.pk, "action_type": "CREATE_ENTITLEMENT", "parameters": {"display_name": "x" * 256}},
        format="json",
    )

    assert answer.status_code == 400
    assert "at most 255 characters" in str(answer.json())
    assert not Action.objects.exists()
