"""Workers under load and faults: a rate limit held by two worker processes together,
concurrency, deprovisions first, quarantine and resume, and a worker killed mid-action."""

from __future__ import annotations

import json
import signal
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timedelta
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

import httpx
import pytest
from django.conf import settings
from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache
from django.test import Client
from django.utils import timezone

from console.accounts.models import Person
from console.audit.models import AuditEvent
from integrations.models import Integration
from integrations.scim_client import ScimClient
from provisioning import execution
from provisioning.execution import action_execute, actions_recover, claim, integration_resume
from provisioning.models import Action, ActionEvent, IntegrationThrottle, ScimCall
from provisioning.services import action_request, action_routing
from provisioning.tasks import actions_execute_task
from provisioning.throttle import reserve, reserve_many, slots_to_reserve
from tests.conftest import WorkerProcess
from tests.provisioning.conftest import server_user
from tests.scim_peer import ERROR as SCIM_ERROR
from tests.scim_peer import PEER_TOKEN, Peer, Throttled

pytestmark = pytest.mark.django_db


def wait_for(condition: Callable[[], bool], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.3)
    raise AssertionError("timed out waiting")


def test_the_token_bucket_allows_the_burst_then_paces() -> None:
    integration = Integration.objects.create(
        name="Paced", base_url="https://x.example.com", rate_limit_per_second=2, rate_limit_burst=3
    )
    waits = [reserve(integration, now=100.0) for _ in range(6)]
    assert waits == [0.0, 0.0, 0.0, 0.5, 1.0, 1.5]
    assert reserve(integration, now=110.0) == 0.0  # the bucket filled up again meanwhile
    # Where the workers share a Redis cache the bucket lives there (one round trip a
    # request); otherwise in the integration's throttle row.
    in_redis = isinstance(caches["default"], RedisCache)
    assert IntegrationThrottle.objects.filter(integration=integration).exists() is not in_redis


def test_slots_reserved_together_are_the_next_ones_of_the_schedule() -> None:
    integration = Integration.objects.create(
        name="Ahead", base_url="https://x.example.com", rate_limit_per_second=2, rate_limit_burst=2
    )
    assert reserve_many(integration, 4, now=100.0) == [0.0, 0.0, 0.5, 1.0]  # the burst, then paced
    assert reserve(integration, now=100.0) == 1.5  # after them, for anyone
    # A worker reserves ahead only what the rate allows in a twentieth of a second.
    assert slots_to_reserve(integration) == 1
    integration.rate_limit_per_second = 10_000
    assert slots_to_reserve(integration) == 20


def test_concurrency_is_held_and_a_deprovision_takes_the_last_slot(
    app: Integration, requester: Person, make_person: Callable[..., Person]
) -> None:
    app.max_concurrency = 2
    app.save()
    first, second, third = (
        action_request(actor=requester, integration=app, action_type="SYNC_IDENTITIES", person=make_person(f"p{i}"))
        for i in range(3)
    )
    assert claim(first.pk).action is not None  # one running, one slot left
    leaver = app.target_users.create(remote_id="u-9", user_name="leaver", content_hash="-")
    deprovision = action_request(
        actor=requester, integration=app, action_type="DEPROVISION_IDENTITY", target_user=leaver
    )
    assert claim(second.pk).busy  # yields the last slot to the deprovision
    assert claim(deprovision.pk).action is not None
    assert claim(third.pk).busy  # two running: the limit
    assert action_execute(third.pk).retry_in == 1.0


def test_repeated_failures_quarantine_the_integration_until_an_admin_resumes(
    app: Integration, requester: Person, approver: Person, make_person: Callable[..., Person], settings: object
) -> None:
    settings.ACTION_QUARANTINE_AFTER = 2  # type: ignore[attr-defined]
    down = ScimClient(app, http=httpx.Client(transport=httpx.MockTransport(lambda r: httpx.Response(503))))
    actions = [
        action_request(actor=requester, integration=app, action_type="SYNC_IDENTITIES", person=make_person(f"p{i}"))
        for i in range(3)
    ]
    for action in actions[:2]:
        action_execute(action.pk, client=down)
    app.refresh_from_db()
    assert app.quarantined_at is not None
    assert "2 failed attempts in a row" in app.quarantine_reason
    Action.objects.filter(pk__in=[a.pk for a in actions]).update(next_attempt_at=None)
    assert action_execute(actions[2].pk).action is None  # waits while quarantined
    admin = Client()
    admin.force_login(approver)
    page = admin.get(f"/integrations/{app.pk}/").content.decode()
    assert "Provisioning is quarantined" in page
    health = admin.get(f"/api/v1/integrations/{app.pk}/health/").json()
    assert health["quarantined"] is True
    assert health["needs_attention"] is True

    assert integration_resume(actor=approver, integration=app) == 3
    app.refresh_from_db()
    assert app.quarantined_at is None
    done = action_execute(actions[2].pk)
    assert done.action is not None
    assert done.action.state == "succeeded"


def _lease_runs_out(action: Action) -> None:
    """As if the worker holding the action died: its lease is past and nobody renews it."""
    Action.objects.filter(pk=action.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))


def _audited_moves(action: Action) -> list[tuple[str, str, str]]:
    events = AuditEvent.objects.filter(target_type="provisioning.action", target_id=str(action.pk)).order_by("id")
    return [(e.verb, e.details.get("from", ""), e.details.get("to", "")) for e in events]


def test_a_dead_workers_action_holds_no_slot_and_is_reclaimed_with_its_true_previous_state(
    app: Integration, requester: Person, make_person: Callable[..., Person]
) -> None:
    app.max_concurrency = 1
    app.save()
    dead, waiting = (
        action_request(actor=requester, integration=app, action_type="SYNC_IDENTITIES", person=make_person(f"p{i}"))
        for i in range(2)
    )
    assert claim(dead.pk).action is not None
    assert claim(waiting.pk).busy  # a live running action holds the only slot

    _lease_runs_out(dead)
    assert actions_recover() == 1  # beat sends the dead one again
    reclaimed = claim(dead.pk).action  # its own expired claim does not stand in its way
    assert reclaimed is not None
    assert reclaimed.attempts == 2
    assert claim(waiting.pk).busy  # running again, with a live lease: it holds the slot

    _lease_runs_out(dead)
    assert claim(waiting.pk).action is not None  # a dead worker's action is not counted

    timeline = [(e.from_state, e.to_state) for e in ActionEvent.objects.filter(action=dead)]
    assert timeline == [("", "queued"), ("queued", "running"), ("running", "running")]
    assert "reclaimed" in ActionEvent.objects.filter(action=dead).last().note  # type: ignore[union-attr]
    assert _audited_moves(dead) == [
        ("action.requested", "", ""),
        ("action.running", "queued", "running"),
        ("action.running", "running", "running"),
    ]


def test_a_claim_that_finds_the_last_slot_taken_under_the_lock_is_undone(
    app: Integration, requester: Person, make_person: Callable[..., Person], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another worker took the slot between the unlocked first look and the count under the lock."""
    app.max_concurrency = 1
    app.save()
    first, second = (
        action_request(actor=requester, integration=app, action_type="SYNC_IDENTITIES", person=make_person(f"p{i}"))
        for i in range(2)
    )
    assert claim(first.pk).action is not None
    monkeypatch.setattr(execution, "running_count", lambda integration, excluding=None: 0)  # the look saw none

    taken = claim(second.pk)

    assert taken.action is None
    assert taken.busy
    second.refresh_from_db()
    assert (second.state, second.attempts, second.lease_token) == ("queued", 0, "")
    assert [(e.from_state, e.to_state) for e in ActionEvent.objects.filter(action=second)] == [("", "queued")]
    assert _audited_moves(second) == [("action.requested", "", "")]  # nothing of the undone claim stays


def test_a_transient_failure_requeue_is_audited_like_every_other_move(
    peer: Peer, peer_throttled: Throttled, requester: Person, make_person: Callable[..., Person]
) -> None:
    app = Integration.objects.create(
        name="Throttled", base_url=peer_throttled.url, bearer_token=PEER_TOKEN, provisioning_enabled=True
    )
    action = action_request(
        actor=requester, integration=app, action_type="SYNC_IDENTITIES", person=make_person("jane.doe")
    )
    assert action_execute(action.pk).retry_in == 1  # the server's Retry-After
    Action.objects.filter(pk=action.pk).update(next_attempt_at=None)
    done = action_execute(action.pk).action
    assert done is not None
    assert done.state == "succeeded", done.last_error
    assert _audited_moves(action) == [
        ("action.requested", "", ""),
        ("action.running", "queued", "running"),
        ("action.queued", "running", "queued"),
        ("action.running", "queued", "running"),
        ("action.succeeded", "", ""),
    ]


def test_a_busy_deprovision_is_sent_again_on_the_leavers_queue(
    app: Integration, requester: Person, make_person: Callable[..., Person], monkeypatch: pytest.MonkeyPatch
) -> None:
    sent: list[tuple[tuple[list[int]], dict[str, object]]] = []
    monkeypatch.setattr(actions_execute_task, "apply_async", lambda args, **options: sent.append((args, options)))
    app.max_concurrency = 1
    app.save()
    running = action_request(actor=requester, integration=app, action_type="SYNC_IDENTITIES", person=make_person("p0"))
    assert claim(running.pk).action is not None
    leaver = app.target_users.create(remote_id="u-9", user_name="leaver", content_hash="-")
    deprovision = action_request(
        actor=requester, integration=app, action_type="DEPROVISION_IDENTITY", target_user=leaver
    )
    other = action_request(actor=requester, integration=app, action_type="SYNC_IDENTITIES", person=make_person("p1"))

    actions_execute_task([deprovision.pk])  # the task's body, as a worker runs it: the integration is busy
    actions_execute_task([other.pk])
    assert sent == [
        (([deprovision.pk],), {"countdown": 1.0, "queue": "leavers"}),
        (([other.pk],), {"countdown": 1.0, "queue": "celery"}),
    ]
    # The same routing as when it was first sent.
    assert action_routing(deprovision) == {"queue": "leavers"}


def test_the_lease_is_renewed_when_it_runs_low_and_a_lost_claim_writes_nothing(
    peer: Peer, app: Integration, requester: Person, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_now = timezone.now
    skipped = timedelta(0)

    def clock() -> datetime:
        return real_now() + skipped

    monkeypatch.setattr(timezone, "now", clock)  # every clock of the console, workers' included

    def time_passes(seconds: float) -> None:
        nonlocal skipped
        skipped += timedelta(seconds=seconds)

    renewed: list[int] = []
    renew = execution.lease_renew

    def counted_renew(held: Action) -> set[int]:
        renewed.append(held.pk)
        return renew(held)

    monkeypatch.setattr(execution, "lease_renew", counted_renew)

    # Requests in quick succession go on the lease the claim took: no renewal each time.
    quick = action_request(
        actor=requester, integration=app, action_type="CREATE_ENTITLEMENT", parameters={"display_name": "Dev"}
    )
    finished_quickly = action_execute(quick.pk).action
    assert finished_quickly is not None
    assert finished_quickly.state == "succeeded"
    assert ScimCall.objects.filter(action=quick).count() == 2  # the lookup and the create
    assert renewed == []

    action = action_request(
        actor=requester, integration=app, action_type="CREATE_ENTITLEMENT", parameters={"display_name": "Ops"}
    )
    seen: list[float] = []

    def long_pause(request: httpx.Request) -> None:
        """Each request "takes" longer than the lease: by then a lease taken before it has run out."""
        held = Action.objects.get(pk=action.pk)
        assert held.lease_expires_at is not None
        seen.append((held.lease_expires_at - timezone.now()).total_seconds())
        time_passes(settings.ACTION_LEASE_SECONDS + 1)

    slow = ScimClient(app, http=httpx.Client(event_hooks={"request": [long_pause]}))
    done = action_execute(action.pk, client=slow).action
    assert done is not None
    assert done.state == "succeeded"  # still its claim: nobody took it meanwhile
    assert len(seen) == 2  # the lookup and the create
    assert all(left > 250 for left in seen), seen  # fresh before each (the lease is 300 s)
    assert renewed == [action.pk]  # the lookup went on the claim's lease; the create found it run out

    # A second worker reclaims an action after the first one's lookup (its lease ran out
    # meanwhile): the first finds that out when it renews, and stops there.
    def reclaimed_after(method: str, target: Action, tokens: list[str]) -> Callable[[httpx.Response], None]:
        def hook(response: httpx.Response) -> None:
            if response.request.method == method:
                time_passes(settings.ACTION_LEASE_SECONDS + 1)
                taken = claim(target.pk).action
                assert taken is not None
                tokens.append(taken.lease_token)

        return hook

    stopped = action_request(
        actor=requester, integration=app, action_type="CREATE_ENTITLEMENT", parameters={"display_name": "Eng"}
    )
    rescuer: list[str] = []
    racing = ScimClient(app, http=httpx.Client(event_hooks={"response": [reclaimed_after("GET", stopped, rescuer)]}))
    assert action_execute(stopped.pk, client=racing).action is None
    assert list(ScimCall.objects.filter(action=stopped).values_list("method", flat=True)) == ["GET"]  # no create
    stopped.refresh_from_db()
    assert (stopped.state, stopped.lease_token) == ("running", rescuer[0])

    # And one reclaimed between its last request and its final write: the write does not count.
    late = action_request(
        actor=requester, integration=app, action_type="CREATE_ENTITLEMENT", parameters={"display_name": "Sales"}
    )
    tokens: list[str] = []
    racing = ScimClient(app, http=httpx.Client(event_hooks={"response": [reclaimed_after("POST", late, tokens)]}))
    assert action_execute(late.pk, client=racing).action is None
    late.refresh_from_db()
    assert (late.state, late.lease_token, late.finished_at) == ("running", tokens[0], None)
    assert not ActionEvent.objects.filter(action=late, to_state="succeeded").exists()
    _lease_runs_out(late)  # the rescuer dies too; the next attempt adopts what the first one created
    finished = action_execute(late.pk).action
    assert finished is not None
    assert (finished.state, finished.result["operation"]) == ("succeeded", "adopted")
    assert peer.http.get("/Groups", params={"filter": 'displayName eq "Sales"'}).json()["totalResults"] == 1


def test_resuming_sends_each_waiting_action_when_its_backoff_is_over(
    app: Integration,
    requester: Person,
    approver: Person,
    make_person: Callable[..., Person],
    monkeypatch: pytest.MonkeyPatch,
    django_capture_on_commit_callbacks: Any,
) -> None:
    sent: list[tuple[tuple[list[int]], dict[str, Any]]] = []
    monkeypatch.setattr(actions_execute_task, "apply_async", lambda args, **options: sent.append((args, options)))
    ready, backing_off = (
        action_request(actor=requester, integration=app, action_type="SYNC_IDENTITIES", person=make_person(f"p{i}"))
        for i in range(2)
    )
    Action.objects.filter(pk=backing_off.pk).update(next_attempt_at=timezone.now() + timedelta(seconds=30))
    Integration.objects.filter(pk=app.pk).update(quarantined_at=timezone.now(), quarantine_reason="x")
    with django_capture_on_commit_callbacks(execute=True):
        assert integration_resume(actor=approver, integration=app) == 2
    countdowns = {pk: options["countdown"] for args, options in sent for pk in args[0]}
    assert countdowns[ready.pk] == 0
    assert 25 < countdowns[backing_off.pk] <= 30  # sent now, it would find the action not due and be dropped


@pytest.mark.worker
def test_two_worker_processes_hold_one_rate_limit_together(
    peer: Peer, start_worker: Callable[..., WorkerProcess], make_person: Callable[..., Person]
) -> None:
    app = Integration.objects.create(
        name="Limited",
        base_url=peer.url,
        bearer_token=PEER_TOKEN,
        provisioning_enabled=True,
        rate_limit_per_second=8,
        rate_limit_burst=1,
        max_concurrency=4,
    )
    operator = make_person("operator", roles=["operator"])
    start_worker("rate-a", concurrency=2)
    start_worker("rate-b", concurrency=2)
    for i in range(16):
        action_request(
            actor=operator, integration=app, action_type="CREATE_ENTITLEMENT", parameters={"display_name": f"G{i}"}
        )
    wait_for(lambda: Action.objects.filter(state="succeeded").count() == 16)
    starts = sorted(ScimCall.objects.values_list("at", flat=True))
    assert len(starts) == 32  # a lookup and a create each
    span = (starts[-1] - starts[0]).total_seconds()
    assert span >= (len(starts) - 1) / 8 * 0.9, f"{len(starts)} requests in {span:.2f} s: faster than 8/s"
    notes = ActionEvent.objects.filter(to_state="running").values_list("note", flat=True)
    processes = {note.rsplit(" on ", 1)[1] for note in notes}
    assert len(processes) >= 2, processes  # both workers took part
    assert peer.http.get("/Groups").json()["totalResults"] == 16


@pytest.mark.worker
def test_a_worker_killed_mid_action_loses_nothing_and_duplicates_nothing(
    peer: Peer, start_worker: Callable[..., WorkerProcess], make_person: Callable[..., Person]
) -> None:
    app = Integration.objects.create(
        name="Slow",
        base_url=peer.url,
        bearer_token=PEER_TOKEN,
        provisioning_enabled=True,
        rate_limit_per_second=0.25,  # the create waits 4 s after the lookup: time to kill the worker
        rate_limit_burst=1,
    )
    operator = make_person("operator", roles=["operator"])
    jane = make_person("jane.doe")
    lease = {"ACTION_LEASE_SECONDS": "2"}
    doomed = start_worker("doomed", concurrency=1, extra_env=lease)
    action = action_request(actor=operator, integration=app, action_type="SYNC_IDENTITIES", person=jane)
    wait_for(lambda: ScimCall.objects.filter(action=action, method="GET").exists(), timeout=30)
    doomed.stop(signal.SIGKILL)
    action.refresh_from_db()
    assert action.state == "running"  # left behind by the dead worker

    # The lookup happened; suppose the create had too before the worker died.
    peer.user("jane.doe")
    _lease_runs_out(action)  # nobody renews it: the dead worker's lease ends
    start_worker("rescuer", concurrency=1, extra_env=lease)
    assert actions_recover() == 1  # what beat does every minute
    wait_for(lambda: Action.objects.get(pk=action.pk).state in {"succeeded", "failed"}, timeout=60)
    action.refresh_from_db()
    assert action.state == "succeeded", action.last_error
    assert action.result["operation"] in {"unchanged", "updated"}  # adopted, not created again
    assert server_user(peer, "jane.doe") is not None  # and exactly one (server_user checks)


@pytest.mark.worker
def test_a_real_worker_honours_retry_after(
    peer: Peer,
    peer_throttled: Throttled,
    start_worker: Callable[..., WorkerProcess],
    make_person: Callable[..., Person],
) -> None:
    peer_throttled.retry_after = 2
    app = Integration.objects.create(
        name="Throttled", base_url=peer_throttled.url, bearer_token=PEER_TOKEN, provisioning_enabled=True
    )
    operator = make_person("operator", roles=["operator"])
    start_worker("retry-after", concurrency=1)
    action = action_request(
        actor=operator, integration=app, action_type="SYNC_IDENTITIES", person=make_person("jane.doe")
    )
    wait_for(lambda: Action.objects.get(pk=action.pk).state in {"succeeded", "failed"}, timeout=60)
    action.refresh_from_db()
    assert action.state == "succeeded", action.last_error
    assert action.attempts == 2
    posts = list(ScimCall.objects.filter(action=action, method="POST").order_by("at"))
    assert [p.status for p in posts] == [429, 201]
    assert (posts[1].at - posts[0].at).total_seconds() >= 2  # waited as the server asked
    assert server_user(peer, "jane.doe") is not None


class _Quiet(WSGIRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


@pytest.fixture
def flaky_peer(scim2_server_app: Any) -> Iterator[dict[str, Any]]:
    """The real SCIM server behind a front that answers 503 while ``down`` is set."""
    state: dict[str, Any] = {"down": True, "refused": 0}

    def front(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if state["down"]:
            state["refused"] += 1
            body = json.dumps({"schemas": [SCIM_ERROR], "status": "503", "detail": "down for maintenance"}).encode()
            start_response(
                "503 Service Unavailable",
                [("Content-Type", "application/scim+json"), ("Retry-After", "1"), ("Content-Length", str(len(body)))],
            )
            return [body]
        return scim2_server_app(environ, start_response)

    httpd = make_server("localhost", 0, front, handler_class=_Quiet)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    state["url"] = f"http://localhost:{httpd.server_port}"
    yield state
    httpd.shutdown()
    thread.join()


@pytest.mark.worker
def test_a_real_worker_quarantines_a_failing_integration_and_resumes_when_an_admin_says(
    peer: Peer,
    flaky_peer: dict[str, Any],
    start_worker: Callable[..., WorkerProcess],
    make_person: Callable[..., Person],
) -> None:
    app = Integration.objects.create(
        name="Flaky", base_url=flaky_peer["url"], bearer_token=PEER_TOKEN, provisioning_enabled=True
    )
    operator = make_person("operator", roles=["operator"])
    admin = make_person("admin", roles=["admin"])
    start_worker("quarantine", concurrency=1, extra_env={"ACTION_QUARANTINE_AFTER": "3"})
    actions = [
        action_request(actor=operator, integration=app, action_type="SYNC_IDENTITIES", person=make_person(name))
        for name in ("ann", "bea")
    ]

    def quarantined() -> bool:
        app.refresh_from_db()
        return app.quarantined_at is not None

    wait_for(quarantined, timeout=60)
    assert "3 failed attempts in a row" in app.quarantine_reason
    assert "503" in app.quarantine_reason
    time.sleep(3)  # well past the server's Retry-After: nothing more is tried while quarantined
    refused = flaky_peer["refused"]
    assert refused == 3
    assert set(Action.objects.filter(pk__in=[a.pk for a in actions]).values_list("state", flat=True)) == {"queued"}

    flaky_peer["down"] = False  # the server works again, but the integration waits for an admin
    time.sleep(2)
    assert not ScimCall.objects.filter(status=200).exists()
    assert set(Action.objects.filter(pk__in=[a.pk for a in actions]).values_list("state", flat=True)) == {"queued"}

    page = Client()
    page.force_login(admin)
    resumed = page.post(f"/actions/integrations/{app.pk}/resume/")
    assert resumed.status_code == 302
    wait_for(
        lambda: (
            set(Action.objects.filter(pk__in=[a.pk for a in actions]).values_list("state", flat=True)) == {"succeeded"}
        )
    )
    app.refresh_from_db()
    assert (app.quarantined_at, app.consecutive_failures) == (None, 0)
    assert flaky_peer["refused"] == refused
    for name in ("ann", "bea"):
        assert server_user(peer, name) is not None
    assert AuditEvent.objects.filter(verb="integration.quarantined").count() == 1
    assert AuditEvent.objects.filter(verb="integration.resumed", actor=admin).count() == 1


@pytest.mark.worker
def test_every_action_type_runs_end_to_end_through_a_real_worker(
    peer: Peer, start_worker: Callable[..., WorkerProcess], make_person: Callable[..., Person]
) -> None:
    from integrations.extraction import extraction_run_execute
    from integrations.models import ExtractionRun, TargetGroup
    from provisioning.services import action_approve, action_reject

    app = Integration.objects.create(
        name="Peer app",
        base_url=peer.url,
        bearer_token=PEER_TOKEN,
        provisioning_enabled=True,
        supports_hard_delete=True,
    )
    ada, bob, dee = peer.user("ada"), peer.user("bob"), peer.user("dee")
    peer.user("cy")
    peer.user("eve")
    peer.group("Engineers", [ada])
    ops = peer.group("Ops", [bob])
    extraction_run_execute(run_id=ExtractionRun.objects.create(integration=app, trigger="manual").pk)
    operator = make_person("operator", roles=["operator"])
    admin = make_person("admin", roles=["admin"])
    jane = make_person("jane.doe", given_name="Jane", family_name="Doe", email="jane@example.com")
    start_worker("every-type", concurrency=2)

    def account(name: str) -> Any:
        return app.target_users.get(user_name=name)

    engineers = TargetGroup.objects.get(integration=app, display_name="Engineers")
    automatic = [
        action_request(actor=operator, integration=app, action_type="SYNC_IDENTITIES", person=jane),
        action_request(
            actor=operator, integration=app, action_type="CREATE_ENTITLEMENT", parameters={"display_name": "Support"}
        ),
        action_request(
            actor=operator,
            integration=app,
            action_type="MANAGE_RELATIONSHIPS",
            target_group=engineers,
            parameters={"add": [dee["id"]], "remove": [ada["id"]]},
        ),
        action_request(actor=operator, integration=app, action_type="DEPROVISION_IDENTITY", target_user=account("bob")),
    ]
    approved, rejected = (
        action_request(actor=operator, integration=app, action_type="DELETE_IDENTITY", target_user=account(name))
        for name in ("eve", "cy")
    )
    assert approved.state == rejected.state == "pending_approval"
    action_approve(actor=admin, action=approved, comment="leaver confirmed")
    action_reject(actor=admin, action=rejected, comment="still employed")

    done_ids = [a.pk for a in [*automatic, approved]]
    wait_for(lambda: Action.objects.filter(pk__in=done_ids, state__in=["succeeded", "failed"]).count() == 5)
    errors = list(
        Action.objects.filter(pk__in=done_ids).exclude(state="succeeded").values_list("last_error", flat=True)
    )
    assert errors == []

    # The application's own state, read back from the server
    assert server_user(peer, "jane.doe") is not None
    assert peer.http.get("/Groups", params={"filter": 'displayName eq "Support"'}).json()["totalResults"] == 1
    members = [m["value"] for m in peer.http.get(f"/Groups/{engineers.remote_id}").json().get("members") or []]
    assert members == [dee["id"]]
    bob_now = server_user(peer, "bob")
    assert bob_now is not None
    assert bob_now["active"] is False
    assert not peer.http.get(f"/Groups/{ops['id']}").json().get("members")
    assert server_user(peer, "eve") is None  # the approved delete
    assert server_user(peer, "cy") is not None  # the rejected one sent nothing
    assert Action.objects.get(pk=rejected.pk).state == "rejected"
    assert not ScimCall.objects.filter(action=rejected).exists()


def test_a_success_ends_a_run_of_failures(peer: Peer, requester: Person, make_person: Callable[..., Person]) -> None:
    app = Integration.objects.create(
        name="Peer app", base_url=peer.url, bearer_token=PEER_TOKEN, provisioning_enabled=True
    )
    down = ScimClient(app, http=httpx.Client(transport=httpx.MockTransport(lambda r: httpx.Response(503))))
    action = action_request(actor=requester, integration=app, action_type="SYNC_IDENTITIES", person=make_person("jane"))
    assert action_execute(action.pk, client=down).retry_in is not None
    app.refresh_from_db()
    assert app.consecutive_failures == 1
    Action.objects.filter(pk=action.pk).update(next_attempt_at=None)  # its backoff is over
    done = action_execute(action.pk).action
    assert done is not None
    assert done.state == "succeeded", done.last_error
    app.refresh_from_db()
    assert app.consecutive_failures == 0
    assert server_user(peer, "jane") is not None
