"""The probe: which form of each SCIM request the console relies on an application accepts.

*Probe* (the integration page, ``POST /api/v1/integrations/{id}/probe/``) tries each
capability of :mod:`integrations.dialect` against the live application and saves what it
found as the integration's dialect profile (source ``probe``). Reads always run. The write
checks run only when the admin confirms them, on a disposable user and group named
``lifecycle-console-probe-<random>`` that are deleted afterwards (the user deactivated, and
said so, where the application refuses the delete); nothing else is ever written.

A form counts as working only when its effect shows: a filter must find what it names and
nothing else (an application that ignores the filter and answers the whole list refuses
it), a PATCH must show in the resource read back. What the probe cannot settle (no answer
arrived, nothing to try it on) is left as it was. The probe runs on a worker
(``probe_task``); its progress is kept in the cache for the page to poll, and it leaves one
audit event with its findings.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from urllib.parse import quote

import httpx
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from console.audit.services import audit_record
from console.core.redaction import integration_redactor
from integrations import dialect
from integrations.discovery import status_in_words
from integrations.models import Integration
from integrations.scim_client import ScimClient, ScimClientError, ScimTransient, escape_filter_value, parse_json

logger = logging.getLogger(__name__)

PREFIX = "lifecycle-console-probe-"
USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
PATCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
STALE_TAG = f'W/"{PREFIX}stale"'
# A probe makes some forty requests; past this it skips what is left (the clean-up still runs).
PROBE_SECONDS = 300
# A probe queued or running for longer than this was lost (no worker took it, or it died).
STALE_SECONDS = PROBE_SECONDS + 300
STATE_SECONDS = 7 * 24 * 3600  # how long the latest probe's outcome is shown
MAX_RETRY_AFTER = 5.0  # a 429 asking for a longer wait leaves that check unsettled
FRESH_WAIT_SECONDS = 1.0  # an application may index a resource it just created a moment later

READ_STEPS = [
    "Reading ServiceProviderConfig",
    "Paging with count",
    "Groups endpoint",
    "Filters",
    "Filters joined with or",
    "What a group's members hold",
    "ETags",
]
WRITE_STEPS = [
    "Creating a test user and group",
    "PATCH replace",
    "PUT",
    "If-Match",
    "Deactivation",
    "Adding and removing a member",
    "Deleting the test user and group",
]
# What the application's errors say before their detail, already said by the status in words.
STATUS_PREFIXES = (": not implemented", ": not found", ": conflict", ": the credentials were refused")


class ProbeFailed(Exception):
    """The application could not be read at all: there is nothing to probe."""


class OutOfTime(Exception):
    """The probe ran past PROBE_SECONDS: what is left is skipped."""


@dataclass
class Answer:
    """What one request of the probe got: a status and a body, or why no answer arrived."""

    method: str
    path: str
    status: int | None = None  # None: no answer arrived (refused, timed out, TLS)
    body: Any = None
    version: str = ""  # the ETag header, else meta.version
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.status is not None and self.status < 400

    @property
    def resource(self) -> dict[str, Any]:
        return self.body if self.ok and isinstance(self.body, dict) else {}

    @property
    def resources(self) -> list[dict[str, Any]] | None:
        """The resources of a SCIM list answer; None when the answer is not one."""
        body = self.body
        if not self.ok or not isinstance(body, dict) or ("Resources" not in body and "totalResults" not in body):
            return None
        found = body.get("Resources") or []
        return [r for r in found if isinstance(r, dict)] if isinstance(found, list) else None

    def said(self) -> str:
        """What the application answered, in words."""
        asked = f"{self.method} {self.path}"
        if self.status is None:
            return f"{asked} got no answer ({self.error})"
        if self.ok:
            return f"{asked} answered {self.status}"
        detail = self.error.partition(f" answered {self.status}")[2]
        for prefix in STATUS_PREFIXES:
            detail = detail.removeprefix(prefix)
        return f"{asked} answered {self.status} ({status_in_words(self.status)}){detail}"


@dataclass
class ProbeReport:
    """What a probe found: settled capabilities with their notes, and what it could not settle."""

    writes: bool
    found: dict[str, Any] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)
    unsettled: dict[str, str] = field(default_factory=dict)  # capability -> why it is still not known
    remarks: list[str] = field(default_factory=list)  # the test resources' fate, skipped checks
    attention: list[str] = field(default_factory=list)  # the remarks that ask something of the admin
    requests: dict[str, int] = field(default_factory=dict)  # by method
    test_name: str = ""
    error: str = ""

    @property
    def summary(self) -> str:
        if self.error:
            return f"Nothing was settled: {self.error}"
        works = sum(1 for v in self.found.values() if v is True or v == "id")
        refused = sum(1 for v in self.found.values() if v is False)
        other = len(self.found) - works - refused
        words = [f"{works} work", f"{refused} refused"]
        if other:
            words.append(f"{other} in the application's own way")
        words.append(f"{len(dialect.CAPABILITIES) - len(self.found)} not settled")
        checks = "reads and writes" if self.writes else "reads only"
        return f"{', '.join(words)} ({checks}, {sum(self.requests.values())} requests)."

    def as_dict(self) -> dict[str, Any]:
        return {
            "writes": self.writes,
            "found": self.found,
            "notes": self.notes,
            "unsettled": self.unsettled,
            "remarks": self.remarks,
            "attention": self.attention,
            "requests": self.requests,
            "test_name": self.test_name,
            "error": self.error,
            "summary": self.summary,
        }


def _attribute(resource: dict[str, Any], name: str) -> Any:
    """A top-level attribute, by its case-insensitive SCIM name."""
    lowered = name.lower()
    return next((value for key, value in resource.items() if key.lower() == lowered), None)


def _member_values(resource: dict[str, Any]) -> list[str] | None:
    """The ``members.value`` of a group; None when the answer does not list members at all."""
    members = _attribute(resource, "members")
    if members is None:
        return None
    if not isinstance(members, list):
        return []
    return [str(m.get("value")) for m in members if isinstance(m, dict) and m.get("value") is not None]


def _matches(resource: dict[str, Any], attribute: str, value: str, expected_id: str | None) -> bool:
    """Whether ``resource`` answers ``attribute eq value`` (or is the one expected, where it leaves it out)."""
    if attribute == "members.value":
        listed = _member_values(resource)
        if listed is None:
            return expected_id is not None and str(resource.get("id")) == expected_id
        return value in listed
    held = _attribute(resource, attribute)
    if held is None:
        return expected_id is not None and str(resource.get("id")) == expected_id
    return str(held).casefold() == value.casefold()


class Prober:
    """The checks, in order, against one application; what they found gathers in ``report``."""

    def __init__(
        self,
        integration: Integration,
        client: ScimClient,
        *,
        writes: bool,
        progress: Callable[[str, int, int], None] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.integration = integration
        self.client = client
        self.writes = writes
        self.progress = progress
        self.sleep = sleep
        self.scrub = integration_redactor(integration).text  # every form of every credential
        self.users = integration.users_endpoint.strip("/")
        self.groups_path = integration.groups_endpoint.strip("/")
        tag = secrets.token_hex(4)
        self.tag = tag
        self.name = f"{PREFIX}{tag}"
        self.group_name = f"{PREFIX}{tag}-group"  # apart from the user's: some applications share one namespace
        self.nobody = f"{PREFIX}{tag}-nobody"  # a value no resource holds
        self.report = ProbeReport(writes=writes, test_name=self.name if writes else "")
        self.requests: Counter[str] = Counter()
        self.config: dict[str, Any] = {}
        self.with_count = True
        self.steps = READ_STEPS + (WRITE_STEPS if writes else [])
        self.done = 0
        self.deadline = time.monotonic() + PROBE_SECONDS
        self.user: dict[str, Any] | None = None  # the disposable user and group, once created
        self.group: dict[str, Any] | None = None

    # --- bookkeeping ---------------------------------------------------------------------

    def step(self, label: str) -> None:
        if time.monotonic() > self.deadline:
            raise OutOfTime(label)
        if self.progress is not None:
            self.progress(label, self.done, len(self.steps))
        self.done += 1

    def settle(self, capability: str, value: Any, note: str) -> None:
        self.report.found[capability] = value
        self.report.notes[capability] = self.scrub(note)[:500]
        self.report.unsettled.pop(capability, None)

    def leave(self, capability: str, why: str) -> None:
        """Not settled by this probe: the profile keeps what it had."""
        if capability not in self.report.found:  # the first reason given is the most particular
            self.report.unsettled.setdefault(capability, self.scrub(why)[:500])

    def remark(self, sentence: str, *, attention: bool = True) -> None:
        self.report.remarks.append(self.scrub(sentence))
        if attention:
            self.report.attention.append(self.scrub(sentence))

    def claims(self, feature: str) -> bool | None:
        """What ServiceProviderConfig says of ``feature`` (``filter``, ``etag``, ``patch``)."""
        entry = self.config.get(feature)
        supported = entry.get("supported") if isinstance(entry, dict) else None
        return supported if isinstance(supported, bool) else None

    # --- requests ------------------------------------------------------------------------

    def call(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json: Any = None,
        headers: dict[str, str] | None = None,
    ) -> Answer:
        """One request; a 429 is waited out (briefly), any other refusal is returned, never raised."""
        shown = path + (f"?{httpx.QueryParams(params)}" if params else "")
        kwargs: dict[str, Any] = {}
        if params:
            kwargs["params"] = params
        if json is not None:
            kwargs["json"] = json
        if headers:
            kwargs["headers"] = headers
        for attempt in range(3):
            self.requests[method] += 1
            try:
                response = self.client.request(method, path, **kwargs)
            except ScimTransient as error:
                status = error.status
                wait = error.retry_after if error.retry_after is not None else 1.0
                if status == 429 and attempt < 2 and wait <= MAX_RETRY_AFTER:
                    self.sleep(wait)
                    continue
                return Answer(method, shown, status, error=self.scrub(str(error)))
            except ScimClientError as error:
                return Answer(method, shown, error.status, error=self.scrub(str(error)))
            body: Any = None
            if response.content:
                try:
                    body = parse_json(response)
                except ValueError:
                    body = None
            meta = body.get("meta") if isinstance(body, dict) else None
            version = response.headers.get("ETag") or (meta.get("version") if isinstance(meta, dict) else None)
            return Answer(method, shown, response.status_code, body, str(version or ""))
        raise AssertionError("unreachable")

    def find(self, endpoint: str, expression: str) -> Answer:
        return self.call("GET", endpoint, params={"filter": expression})

    def patch(self, path: str, operations: list[dict[str, Any]], headers: dict[str, str] | None = None) -> Answer:
        return self.call("PATCH", path, json={"schemas": [PATCH_SCHEMA], "Operations": operations}, headers=headers)

    def user_path(self) -> str:
        assert self.user is not None
        return f"{self.users}/{quote(str(self.user['id']), safe='')}"

    def group_path(self) -> str:
        assert self.group is not None
        return f"{self.groups_path}/{quote(str(self.group['id']), safe='')}"

    # --- the probe -----------------------------------------------------------------------

    def run(self) -> ProbeReport:
        try:
            self.step(READ_STEPS[0])
            self.read_config()
            self.step(READ_STEPS[1])
            sample_users = self.check_count()
            self.step(READ_STEPS[2])
            sample_groups = self.check_groups()
            try:
                if self.writes:
                    self.step(WRITE_STEPS[0])
                    self.create_test_resources()
                known_user = self.user or next((u for u in sample_users if u.get("id") and u.get("userName")), None)
                known_group = self.group or next((g for g in sample_groups if g.get("id")), None)
                self.step(READ_STEPS[3])
                self.check_filters(known_user, known_group)
                self.step(READ_STEPS[4])
                self.check_filter_or(known_user)
                self.step(READ_STEPS[5])
                if self.user is None or self.group is None:
                    self.check_members_as_they_are(sample_groups)
                self.step(READ_STEPS[6])
                self.check_versions(known_user)
                if self.user is not None:
                    self.write_checks()
                elif self.writes:
                    for capability in ("patch_replace", "put", "etag", "active", "hard_delete"):
                        self.leave(capability, "the test user could not be created")
            finally:
                if self.user is not None or self.group is not None:
                    self.clean_up()
        except ProbeFailed as failure:
            self.report.error = self.scrub(str(failure))
        except OutOfTime as late:
            self.remark(f"The probe ran past {PROBE_SECONDS} s and stopped before: {late}.")
        if not self.writes:
            for capability in ("patch_filter_path_remove", "patch_value_list_remove", "patch_replace", "put"):
                self.leave(capability, "a write check: probe with writes to try it")
            for capability in ("active", "hard_delete"):
                self.leave(capability, "a write check: probe with writes to try it")
            if "etag" not in self.report.found:
                self.leave("etag", "whether a stale If-Match is refused is a write check: probe with writes")
        for capability in dialect.CAPABILITIES:
            self.leave(capability, "not tried")
        self.report.requests = dict(self.requests)
        return self.report

    def read_config(self) -> None:
        answer = self.call("GET", "ServiceProviderConfig")
        if answer.status is None or answer.status in (401, 403):
            raise ProbeFailed(answer.said())
        if isinstance(answer.resource, dict) and answer.resource:
            self.config = answer.resource
        else:
            self.remark(f"{answer.said()}: the checks went on without ServiceProviderConfig.")

    def check_count(self) -> list[dict[str, Any]]:
        """``count`` (and ``startIndex``) on the users list; the answer's users are the read checks' sample."""
        first = self.call("GET", self.users, params={"startIndex": 1, "count": 1})
        if first.status is None or first.status in (401, 403, 404):
            raise ProbeFailed(first.said())
        listed = first.resources
        if listed is None:
            plain = self.call("GET", self.users)
            if plain.resources is None:
                raise ProbeFailed(plain.said() if not plain.ok else f"{plain.said()}, not a SCIM list")
            self.with_count = False
            self.settle("count", False, f"{first.said()}; the same list without count was answered")
            return plain.resources
        if len(listed) > 1:
            self.with_count = False
            self.settle("count", False, f"{first.said()} with {len(listed)} resources for count=1: it ignores count")
            return listed
        note = f"{first.said()} with {len(listed)} resource for count=1"
        total = first.body.get("totalResults")
        if isinstance(total, int) and total >= 2 and listed:
            second = self.call("GET", self.users, params={"startIndex": 2, "count": 1})
            following = second.resources
            if following and following[0].get("id") == listed[0].get("id"):
                note += "; startIndex=2 answered the first resource again: it ignores startIndex"
            elif following:
                note += "; startIndex=2 answered the next one"
        self.settle("count", True, note)
        return listed

    def check_groups(self) -> list[dict[str, Any]]:
        answer = self.call("GET", self.groups_path, params={"startIndex": 1, "count": 5} if self.with_count else None)
        groups = answer.resources
        if groups is not None:
            self.settle("groups", True, f"{answer.said()} with a SCIM list")
            return groups
        if answer.ok:
            self.settle("groups", False, f"{answer.said()}, not a SCIM list")
        elif answer.status is not None and answer.status < 500:
            self.settle("groups", False, answer.said())
        else:  # the application failed, or no answer: not a refusal of groups
            self.leave("groups", answer.said())
        return []

    def create_test_resources(self) -> None:
        user = {
            "schemas": [USER_SCHEMA],
            "userName": self.name,
            "externalId": self.name,
            "displayName": f"Lifecycle Console probe {self.tag}",
            "name": {"givenName": "Lifecycle Console", "familyName": f"Probe {self.tag}"},
            "emails": [{"value": f"{self.name}@probe.invalid", "type": "work", "primary": True}],
            "active": True,
        }
        created = self.call("POST", self.users, json=user)
        if not created.ok:
            self.remark(f"The test user could not be created ({created.said()}): the write checks did not run.")
            return
        resource = created.resource
        if not resource.get("id"):  # some applications answer 201 without the resource
            found = self.find(self.users, f"userName eq {escape_filter_value(self.name)}").resources or []
            resource = next((u for u in found if str(u.get("userName")) == self.name), {})
        if not resource.get("id"):
            self.remark(
                f"The test user {self.name} was created but the application did not say its id: "
                "the write checks did not run; remove it by hand."
            )
            return
        # Only what is plainly the probe's own is ever changed or deleted.
        if str(resource.get("userName") or self.name).casefold() != self.name.casefold():
            self.remark(
                f"Creating the test user {self.name} answered a user named {resource.get('userName')!r}: "
                "the write checks did not run; look for the test user in the application."
            )
            return
        self.user = resource
        if self.report.found.get("groups") is not True:
            return
        created = self.call("POST", self.groups_path, json={"schemas": [GROUP_SCHEMA], "displayName": self.group_name})
        group = created.resource
        if not (created.ok and group.get("id")):
            self.remark(f"The test group could not be created ({created.said()}): the member checks did not run.")
        elif str(group.get("displayName") or self.group_name).casefold() != self.group_name.casefold():
            self.remark(
                f"Creating the test group {self.group_name} answered a group named {group.get('displayName')!r}: "
                "the member checks did not run; look for the test group in the application."
            )
        else:
            self.group = group

    # --- filters -------------------------------------------------------------------------

    def filter_works(
        self, endpoint: str, attribute: str, value: str | None, expected_id: str | None
    ) -> tuple[bool | None, str]:
        """Whether ``attribute eq value`` finds ``expected_id`` and nothing else, and a value no
        resource holds finds nothing: (True, False or None when it could not tell, in words).

        Without a value to look for, only the second half is tried: it can show the filter
        refused or ignored, never working (True is not returned).
        """
        expression = f"{attribute} eq {escape_filter_value(value)}" if value else ""
        if value:
            answer = self.find(endpoint, expression)
            verdict = self._filtered(answer, expression, attribute, value, expected_id)
            if verdict is None and answer.ok and expected_id is not None and answer.resources == []:
                self.sleep(FRESH_WAIT_SECONDS)  # just created: some applications index a moment later
                answer = self.find(endpoint, expression)
                verdict = self._filtered(answer, expression, attribute, value, expected_id)
            if verdict is not None:
                return verdict
            if answer.status is None:
                return None, answer.said()
            if expected_id is not None and expected_id not in {str(r.get("id")) for r in answer.resources or []}:
                return False, f"{expression} did not find the resource that holds it"
        nobody = f"{attribute} eq {escape_filter_value(self.nobody)}"
        answer = self.find(endpoint, nobody)
        verdict = self._filtered(answer, nobody, attribute, self.nobody, None)
        if verdict is not None:
            return verdict
        if answer.status is None:
            return None, answer.said()
        if not value:
            return None, f"{attribute} eq: a value nothing holds found nothing (there was nothing to look for)"
        return True, f"{attribute} eq works"

    def _filtered(
        self, answer: Answer, expression: str, attribute: str, value: str, expected_id: str | None
    ) -> tuple[bool, str] | None:
        """False (and why) when the answer refuses or ignores the filter; None when it holds."""
        if answer.status is None:
            return None
        if not answer.ok:
            return False, f"{expression}: {answer.said()}"
        found = answer.resources
        if found is None:
            return False, f"{expression}: {answer.said()}, not a SCIM list"
        strays = [r for r in found if not _matches(r, attribute, value, expected_id)]
        if strays:
            return False, (
                f"{expression} was answered with {len(found)} resources, {len(strays)} of which do not match: "
                "it ignores the filter"
            )
        return None

    def check_filters(self, user: dict[str, Any] | None, group: dict[str, Any] | None) -> None:
        user_id = str(user["id"]) if user else None
        checks: list[tuple[str, bool | None, str]] = []
        for attribute in ("userName", "externalId"):
            value = _attribute(user, attribute) if user else None
            works, words = self.filter_works(self.users, attribute, str(value) if value else None, user_id)
            checks.append((attribute, works, words))
        if self.report.found.get("groups") is True:
            name = _attribute(group, "displayName") if group else None
            works, words = self.filter_works(
                self.groups_path, "displayName", str(name) if name else None, str(group["id"]) if group else None
            )
        else:
            name = _attribute(user, "displayName") if user else None
            works, words = self.filter_works(self.users, "displayName", str(name) if name else None, user_id)
        checks.append(("displayName", works, words))
        refused = [words for _, works, words in checks if works is False]
        note = "; ".join(words for _, _, words in checks)
        if self.claims("filter") is False:
            note = f"ServiceProviderConfig says filter is not supported; {note}"
        if refused:
            self.settle("filter", False, note)
        elif checks[0][1] is True:
            self.settle("filter", True, note + self.optional_operators(user))
        else:
            self.leave("filter", note)

    def optional_operators(self, user: dict[str, Any] | None) -> str:
        """``sw`` and ``co`` on userName: the console does not need them, the note says whether they work."""
        if not user:
            return ""
        name = str(user.get("userName") or "")
        said = []
        for operator, part in (("sw", name[: max(3, len(name) // 2)]), ("co", name[1:-1] or name)):
            expression = f"userName {operator} {escape_filter_value(part)}"
            answer = self.find(self.users, expression)
            found = answer.resources
            if found is None:
                said.append(f"{operator} refused ({answer.said()})")
                continue
            held = [str(r.get("userName") or "").casefold() for r in found]
            fits = all((h.startswith(part.casefold()) if operator == "sw" else part.casefold() in h) for h in held if h)
            found_user = str(user["id"]) in {str(r.get("id")) for r in found}
            said.append(f"{operator} works" if fits and found_user else f"{operator} is ignored or does not find")
        return "; optional operators: " + ", ".join(said)

    def check_filter_or(self, user: dict[str, Any] | None) -> None:
        if not user:
            self.leave("filter_or", "no user to look for")
            return
        name = str(user.get("userName") or "")
        expression = f"externalId eq {escape_filter_value(self.nobody)} or userName eq {escape_filter_value(name)}"
        answer = self.find(self.users, expression)
        if answer.status is None:
            self.leave("filter_or", answer.said())
            return
        if not answer.ok or answer.resources is None:
            self.settle("filter_or", False, f"{expression}: {answer.said()}")
            return
        strays = [r for r in answer.resources if not _matches(r, "userName", name, str(user["id"]))]
        if strays:
            self.settle(
                "filter_or", False, f"{expression} was answered with {len(strays)} resources that match neither clause"
            )
        elif str(user["id"]) not in {str(r.get("id")) for r in answer.resources}:
            self.settle("filter_or", False, f"{expression} did not find the user named in its second clause")
        else:
            self.settle("filter_or", True, f"{expression} found the one user")

    # --- members, read only ----------------------------------------------------------------

    def check_members_as_they_are(self, groups: list[dict[str, Any]]) -> None:
        """``member_reference`` and ``filter_members`` from the application's own groups, without writing."""
        if self.report.found.get("groups") is not True:
            for capability in ("member_reference", "filter_members"):
                self.leave(capability, "no Groups endpoint to read")
            return
        chosen: tuple[dict[str, Any], str] | None = None
        for group in groups[:5]:
            members = _attribute(group, "members")
            if members is None and group.get("id"):  # lists may leave members out: read the group itself
                members = _attribute(
                    self.call("GET", f"{self.groups_path}/{quote(str(group['id']), safe='')}").resource, "members"
                )
            values = [
                str(m["value"])
                for m in (members if isinstance(members, list) else [])
                if isinstance(m, dict) and m.get("value") is not None and str(m.get("type") or "User") == "User"
            ]
            if values:
                chosen = (group, values[0])
                break
        if chosen is None:
            for capability in ("member_reference", "filter_members"):
                self.leave(capability, "no group with members to look at (probe with writes to try it)")
            return
        group, value = chosen
        lists = f"group {group.get('displayName')!r} lists member {value!r}"
        by_id = self.call("GET", f"{self.users}/{quote(value, safe='')}")
        if by_id.ok and str(by_id.resource.get("id")) == value:
            self.settle("member_reference", "id", f"{lists}, a user's id")
        else:
            named = self.find(self.users, f"userName eq {escape_filter_value(value)}").resources or []
            if any(str(u.get("userName") or "").casefold() == value.casefold() for u in named):
                self.settle("member_reference", "userName", f"{lists}, a user's userName (no user has that id)")
            else:
                self.leave("member_reference", f"{lists}: no user has that id or userName")
        self.check_filter_members(value, str(group["id"]))

    def check_filter_members(self, value: str, group_id: str) -> None:
        works, words = self.filter_works(self.groups_path, "members.value", value, group_id)
        if works is None:
            self.leave("filter_members", words)
        else:
            self.settle("filter_members", works, words)

    # --- ETags, read only ------------------------------------------------------------------

    def check_versions(self, user: dict[str, Any] | None) -> None:
        """A GET without a version settles ``etag`` (nothing to send); with one, the writes settle it."""
        if not user:
            self.leave("etag", "no user to read")
            return
        answer = self.call("GET", f"{self.users}/{quote(str(user['id']), safe='')}")
        if not answer.ok:
            self.leave("etag", answer.said())
        elif not answer.version:
            self.settle("etag", False, f"{answer.said()} with neither an ETag header nor meta.version")
        else:
            self.leave(
                "etag",
                f"{answer.said()} with version {answer.version}; whether a stale If-Match is refused is a write check",
            )

    # --- writes, on the test user and group ------------------------------------------------

    def write_checks(self) -> None:
        self.step(WRITE_STEPS[1])
        self.check_patch_replace()
        self.step(WRITE_STEPS[2])
        self.check_put()
        self.step(WRITE_STEPS[3])
        self.check_if_match()
        self.step(WRITE_STEPS[4])
        self.check_active()
        self.step(WRITE_STEPS[5])
        if self.group is not None:
            self.check_members()
        else:
            for capability in ("member_reference", "filter_members", "patch_filter_path_remove"):
                self.leave(capability, "no test group")
            self.leave("patch_value_list_remove", "no test group")

    def read_user(self) -> Answer:
        return self.call("GET", self.user_path())

    def check_patch_replace(self) -> None:
        changed = f"Lifecycle Console probe {self.tag} (patched)"
        answer = self.patch(self.user_path(), [{"op": "replace", "path": "displayName", "value": changed}])
        if answer.status is None:
            self.leave("patch_replace", answer.said())
            return
        if not answer.ok:
            works, note = False, f"replace path displayName: {answer.said()}"
        else:
            held = _attribute(self.read_user().resource, "displayName")
            works = held == changed
            note = "replace path displayName: " + (
                "changed and read back" if works else f"{answer.said()}, but displayName read back as {held!r}"
            )
        pathless = f"Lifecycle Console probe {self.tag} (path-less)"
        answer = self.patch(self.user_path(), [{"op": "replace", "value": {"displayName": pathless}}])
        if not answer.ok:
            note += f"; path-less replace: {answer.said()}"
        elif _attribute(self.read_user().resource, "displayName") == pathless:
            note += "; path-less replace works"
        else:
            note += "; path-less replace was answered but not made"
        self.settle("patch_replace", works, note)

    def _put_user(self, change: dict[str, Any], headers: dict[str, str] | None = None) -> Answer:
        current = self.read_user()
        if not current.ok:
            return current
        body = {key: value for key, value in current.resource.items() if key != "meta"}
        body.update(change)
        return self.call("PUT", self.user_path(), json=body, headers=headers)

    def check_put(self) -> None:
        changed = f"Lifecycle Console probe {self.tag} (put)"
        answer = self._put_user({"displayName": changed})
        if answer.status is None:
            self.leave("put", answer.said())
        elif not answer.ok:
            self.settle("put", False, answer.said())
        elif (held := _attribute(self.read_user().resource, "displayName")) == changed:
            self.settle("put", True, f"{answer.said()}; the change read back")
        else:
            self.settle("put", False, f"{answer.said()}, but displayName read back as {held!r}")

    def check_if_match(self) -> None:
        """The version the application gave is accepted in If-Match, and a stale one refused with 412."""
        before = self.read_user()
        if not before.ok:
            self.leave("etag", before.said())
            return
        if not before.version:
            self.settle("etag", False, f"{before.said()} with neither an ETag header nor meta.version")
            return
        by_put = self.report.found.get("put") is True

        def write(label: str, version: str) -> Answer:
            value = f"Lifecycle Console probe {self.tag} ({label})"
            if by_put:
                return self._put_user({"displayName": value}, {"If-Match": version})
            return self.patch(
                self.user_path(), [{"op": "replace", "path": "displayName", "value": value}], {"If-Match": version}
            )

        how = "PUT" if by_put else "PATCH"
        current = write("if-match", before.version)
        if current.status is None:
            self.leave("etag", current.said())
            return
        if not current.ok:
            self.settle("etag", False, f"{how} with If-Match {before.version}, its own version: {current.said()}")
            return
        after = current.version or self.read_user().version
        stale = before.version if after and after != before.version else STALE_TAG
        late = write("stale", stale)
        if late.status == 412:
            self.settle("etag", True, f"versions {before.version}, {after}; a stale If-Match ({stale}) answered 412")
        elif late.ok:
            self.settle("etag", False, f"{how} with a stale If-Match ({stale}) was made: it ignores If-Match")
        elif late.status is None:
            self.leave("etag", late.said())
        else:
            self.settle("etag", False, f"{how} with a stale If-Match ({stale}): {late.said()}, not 412")

    def deactivate(self) -> Answer:
        """PATCH replace active false, else (refused) the whole user with PUT."""
        answer = self.patch(self.user_path(), [{"op": "replace", "path": "active", "value": False}])
        if answer.status is not None and not answer.ok:
            by_put = self._put_user({"active": False})
            if by_put.ok:
                return by_put
        return answer

    def check_active(self) -> None:
        answer = self.deactivate()
        if answer.status is None:
            self.leave("active", answer.said())
            return
        if not answer.ok:
            self.settle("active", False, f"replace active false: {answer.said()}")
            return
        how = "PUT with active false" if answer.method == "PUT" else "PATCH replace active false"
        held = _attribute(self.read_user().resource, "active")
        if held is False:
            self.settle("active", True, f"{how}: read back false")
        elif held is None:
            self.settle("active", False, f"{how}: {answer.said()}, but the user read back shows no active")
        else:
            self.settle("active", False, f"{how}: {answer.said()}, but the user read back is still active")

    def group_members(self) -> list[str] | None:
        return _member_values(self.call("GET", self.group_path()).resource)

    def check_members(self) -> None:
        """Add the test user to the test group; what the group lists; the member filter; both removals."""
        assert self.user is not None
        user_id, user_name = str(self.user["id"]), str(self.user.get("userName") or self.name)
        added = self.patch(self.group_path(), [{"op": "add", "path": "members", "value": [{"value": user_id}]}])
        by = "id"
        if added.status is not None and not added.ok:  # perhaps the application takes names
            by_name = self.patch(self.group_path(), [{"op": "add", "path": "members", "value": [{"value": user_name}]}])
            if by_name.ok:
                added, by = by_name, "userName"
        if not added.ok:
            for capability in ("member_reference", "filter_members", "patch_filter_path_remove"):
                self.leave(capability, f"adding the test user to the test group: {added.said()}")
            self.leave("patch_value_list_remove", f"adding the test user to the test group: {added.said()}")
            return
        listed = self.group_members() or []
        if user_id in listed:
            value = user_id
            self.settle("member_reference", "id", f"added by id; the group lists the user's id {user_id}")
        elif user_name in listed or any(v.casefold() == user_name.casefold() for v in listed):
            value = next(v for v in listed if v.casefold() == user_name.casefold())
            self.settle(
                "member_reference", "userName", f"added by {by}; the group lists the user's userName, not its id"
            )
        else:
            reason = f"added by {by} ({added.said()}), but the group read back lists {listed[:3]!r}"
            for capability in ("member_reference", "filter_members", "patch_filter_path_remove"):
                self.leave(capability, reason)
            self.leave("patch_value_list_remove", reason)
            return
        self.check_filter_members(value, str(self.group["id"]) if self.group else "")
        self.check_removal(
            "patch_filter_path_remove",
            value,
            [{"op": "remove", "path": f"members[value eq {escape_filter_value(value)}]"}],
            "remove path members[value eq …]",
        )
        if value not in (self.group_members() or []):
            again = self.patch(self.group_path(), [{"op": "add", "path": "members", "value": [{"value": value}]}])
            if not again.ok or value not in (self.group_members() or []):
                self.leave("patch_value_list_remove", f"the test user could not be added again: {again.said()}")
                return
        self.check_removal(
            "patch_value_list_remove",
            value,
            [{"op": "remove", "path": "members", "value": [{"value": value}]}],
            "remove path members with a value list",
        )

    def check_removal(self, capability: str, value: str, operations: list[dict[str, Any]], form: str) -> None:
        answer = self.patch(self.group_path(), operations)
        if answer.status is None:
            self.leave(capability, answer.said())
        elif not answer.ok:
            self.settle(capability, False, f"{form}: {answer.said()}")
        elif value in (self.group_members() or []):
            self.settle(capability, False, f"{form}: {answer.said()}, but the group still lists the member")
        else:
            self.settle(capability, True, f"{form}: removed and read back")

    # --- clean-up --------------------------------------------------------------------------

    def clean_up(self) -> None:
        """Delete the test group and user (the user's delete is the hard-delete check); where the
        application refuses to delete the user, deactivate it and say so."""
        self.deadline = float("inf")  # the clean-up always runs to its end
        self.step(WRITE_STEPS[6])
        if self.group is not None:
            name = self.group.get("displayName") or self.group_name
            answer = self.call("DELETE", self.group_path())
            if answer.ok or answer.status == 404:
                self.remark(f"The test group {name} was deleted.", attention=False)
            else:
                self.remark(f"The test group {name} could not be deleted ({answer.said()}): remove it by hand.")
        if self.user is None:
            return
        answer = self.call("DELETE", self.user_path())
        if answer.ok:
            after = self.read_user()
            if after.status == 404:
                self.settle("hard_delete", True, f"{answer.said()}; the user then answered 404")
                self.remark(f"The test user {self.name} was deleted.", attention=False)
                return
            if after.ok:
                self.settle("hard_delete", False, f"{answer.said()}, but the user is still there ({after.said()})")
            else:
                self.leave("hard_delete", f"{answer.said()}; reading the user back: {after.said()}")
                self.remark(f"The test user {self.name} was deleted, as far as the application said.")
                return
        elif answer.status is None:
            self.leave("hard_delete", answer.said())
        else:
            self.settle("hard_delete", False, answer.said())
        deactivated = self.deactivate()
        if deactivated.ok:
            self.remark(
                f"The test user {self.name} could not be deleted ({answer.said()}): it was deactivated "
                "and stays in the application; remove it by hand."
            )
        else:
            self.remark(
                f"The test user {self.name} could neither be deleted ({answer.said()}) nor deactivated "
                f"({deactivated.said()}): remove it by hand."
            )


# --- running a probe, and its state --------------------------------------------------------


def probe_run(
    *,
    integration: Integration,
    writes: bool,
    actor: Any = None,
    client: ScimClient | None = None,
    progress: Callable[[str, int, int], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> ProbeReport:
    """Probe the application, save what was settled in the dialect profile, and record one audit event."""
    client = client or ScimClient(integration, read_attempts=1, sleep=sleep)
    report = Prober(integration, client, writes=writes, progress=progress, sleep=sleep).run()
    if report.found:
        dialect.learn_many(integration, report.found, source="probe", notes=report.notes)
    if not report.error:
        probed_at = timezone.now()
        Integration.objects.filter(pk=integration.pk).update(dialect_probed_at=probed_at)
        integration.dialect_probed_at = probed_at
    audit_record(
        verb="integration.probed",
        actor=actor,
        target=integration,
        details={
            "writes": writes,
            "found": report.found,
            "notes": report.notes,
            "unsettled": report.unsettled,
            "remarks": report.remarks,
            "requests": dict(report.requests),
            **({"error": report.error} if report.error else {}),
        },
    )
    logger.info(
        "dialect probed",
        extra={"integration": integration.pk, "writes": writes, "settled": len(report.found), "error": report.error},
    )
    return report


def _state_key(integration_id: int) -> str:
    return f"integrations:probe:{integration_id}"


def _lock_key(integration_id: int) -> str:
    return f"integrations:probe:{integration_id}:lock"


def probe_state(*, integration: Integration) -> dict[str, Any] | None:
    """The latest probe of the integration: queued, running (with its step), finished or lost."""
    state = cache.get(_state_key(integration.pk))
    if not isinstance(state, dict):
        return None
    state = dict(state)
    if state.get("state") in ("queued", "running"):
        since = parse_datetime(str(state.get("started_at") or state.get("queued_at") or ""))
        if since is not None and timezone.now() - since > timedelta(seconds=STALE_SECONDS):
            waited = "no worker took it" if state["state"] == "queued" else "its worker stopped"
            state.update(state="lost", error=f"The probe was lost ({waited}): probe again.")
    state["active"] = state.get("state") in ("queued", "running")
    return state


def _save_state(integration_id: int, **fields: Any) -> dict[str, Any]:
    state = cache.get(_state_key(integration_id))
    state = {**(state if isinstance(state, dict) else {}), **fields}
    cache.set(_state_key(integration_id), state, STATE_SECONDS)
    return state


def probe_start(*, integration: Integration, writes: bool, actor: Any) -> tuple[dict[str, Any], bool]:
    """Queue a probe, or return the one already under way (never two at once): (state, whether queued now)."""
    from integrations.tasks import probe_task

    if not cache.add(_lock_key(integration.pk), timezone.now().isoformat(), STALE_SECONDS):
        state = probe_state(integration=integration)
        if state is not None and state["active"]:
            return state, False
        cache.set(_lock_key(integration.pk), timezone.now().isoformat(), STALE_SECONDS)  # a lost probe's lock
    steps = len(READ_STEPS) + (len(WRITE_STEPS) if writes else 0)
    cache.set(
        _state_key(integration.pk),
        {
            "state": "queued",
            "writes": writes,
            "requested_by": actor.get_username() if actor is not None else "",
            "queued_at": timezone.now().isoformat(),
            "started_at": None,
            "finished_at": None,
            "step": "Waiting for a worker",
            "done": 0,
            "total": steps,
            "summary": "",
            "error": "",
            "report": None,
        },
        STATE_SECONDS,
    )
    actor_id = getattr(actor, "pk", None)
    transaction.on_commit(lambda: probe_task.delay(integration.pk, writes, actor_id))
    return probe_state(integration=integration) or {}, True


def probe_execute(*, integration_id: int, writes: bool, actor_id: int | None = None) -> ProbeReport | None:
    """Carry out a queued probe (the worker's side), keeping its progress where the page reads it."""
    from console.accounts.models import Person

    integration = Integration.objects.filter(pk=integration_id).first()
    if integration is None:
        cache.delete(_lock_key(integration_id))
        return None
    actor = Person.objects.filter(pk=actor_id).first() if actor_id else None
    _save_state(integration_id, state="running", started_at=timezone.now().isoformat(), step=READ_STEPS[0])

    def progress(step: str, done: int, total: int) -> None:
        _save_state(integration_id, step=step, done=done, total=total)

    try:
        report = probe_run(integration=integration, writes=writes, actor=actor, progress=progress)
    except Exception as exc:
        logger.exception("dialect probe failed", extra={"integration": integration_id})
        _save_state(
            integration_id,
            state="failed",
            finished_at=timezone.now().isoformat(),
            error=f"The probe stopped: {type(exc).__name__}",
        )
        raise
    finally:
        cache.delete(_lock_key(integration_id))
    _save_state(
        integration_id,
        state="failed" if report.error else "succeeded",
        finished_at=timezone.now().isoformat(),
        step="Done",
        done=len(READ_STEPS) + (len(WRITE_STEPS) if writes else 0),
        summary=report.summary,
        error=report.error,
        report=report.as_dict(),
    )
    return report


# --- what the page and the API show ----------------------------------------------------------


def _tone(works: Any) -> str:
    """The badge of a row: works (or ids, the standard), refused, unknown, or the application's own way."""
    if works is True or works == "id":
        return "ok"
    if works is False:
        return "bad"
    return "muted" if works is None else "warn"


def profile_rows(integration: Integration, unsettled: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """``dialect.rows`` for the page: each entry's time as a datetime, a badge tone, and for what is not
    known yet, why the latest probe could not settle it."""
    rows = []
    for row in dialect.rows(integration):
        at = parse_datetime(row["at"]) if isinstance(row.get("at"), str) else None
        note = row["note"]
        if row["works"] is None and not note and (unsettled or {}).get(row["key"]):
            note = f"Latest probe: {(unsettled or {})[row['key']]}"
        rows.append({**row, "at": at, "tone": _tone(row["works"]), "note": note})
    return rows


def probe_panel(integration: Integration) -> dict[str, Any]:
    """What the Dialect section of the integration page needs."""
    state = probe_state(integration=integration)
    report = state.get("report") if state else None
    unsettled = report.get("unsettled") if isinstance(report, dict) else None
    return {"dialect_rows": profile_rows(integration, unsettled), "probe": state}
