"""Sync identity: a person's account in the application, made or brought up to date.

The account is looked for by externalId, then by userName (``provisioning/lookups.py``):
none is made with a POST (a 409 meanwhile: found and adopted); one that differs gets the
attributes that differ (PATCH replace, else PUT: ``provisioning/dialect_forms.py``); one
that was deactivated (a re-hire) is first made active on its own. A worker that claimed
several syncs together looks their accounts up with one filter (``prepare_batch``). An
account's own attributes (the reactivation that undoes a deprovision) go to that account,
read by its id: it is never looked up by a name another account may hold by now.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from console.accounts.models import Person
from integrations import dialect
from integrations.models import Integration, TargetGroup, TargetUser
from integrations.scim_client import (
    ScimBadRequest,
    ScimClient,
    ScimClientError,
    ScimConflict,
    ScimNotFound,
    escape_filter_value,
)
from provisioning.action_types.base import USER_SCHEMA, ActionKind, Checked, LeaseLost, Run, users_endpoint
from provisioning.dialect_forms import ChangeNotMade, replace_attributes, set_active
from provisioning.dry_run import PlannedRequest, rehearse, with_user_names
from provisioning.errors import ActionRefused
from provisioning.lookups import AmbiguousMatch, cannot_filter, find_user, matches
from provisioning.models import Action, ActionType

if TYPE_CHECKING:
    from provisioning.execution import BatchRun
    from provisioning.services import ActionTarget

# --- validation ------------------------------------------------------------------------------


def validate(
    *,
    integration: Integration,
    person: Person | None,
    target_user: TargetUser | None,
    target_group: TargetGroup | None,
    parameters: dict[str, Any],
) -> tuple[str, dict[str, Any]]:
    """The person's attributes, by the integration's mapping; or an account's own, set directly."""
    from provisioning.services import ActionTarget

    target = ActionTarget(person=person, target_user=target_user, target_group=target_group, parameters=parameters)
    (checked,) = validate_many(integration=integration, targets=[target])
    if isinstance(checked, ActionRefused):
        raise checked
    return checked


def validate_many(*, integration: Integration, targets: Sequence[ActionTarget]) -> list[Checked]:
    """``validate`` for each target, the integration's transformers read once for all (and the
    people's managers in one query, when a transformer reads them)."""
    from provisioning.transformers import TransformerError, user_mapping

    checked: list[Checked] = []
    mapping = None
    for target in targets:
        person, target_user, parameters = target.person, target.target_user, target.parameters
        if person is None and target_user is not None and isinstance(parameters.get("user"), dict):
            # An account's own attributes set directly (undoing a deprovision reactivates it): that
            # account, by its id.
            checked.append(
                (
                    target_user.user_name,
                    {
                        "user": {"userName": target_user.user_name, **parameters["user"]},
                        "user_id": target_user.remote_id,
                    },
                )
            )
            continue
        if person is None:
            checked.append(ActionRefused("Choose the person to sync.", "person"))
            continue
        if mapping is None:
            mapping = user_mapping(integration)
            mapping.read_ahead(t.person for t in targets if t.person is not None)
        try:
            checked.append((person.username, {"user": mapping.payload(person)}))
        except TransformerError as exc:
            checked.append(ActionRefused(str(exc), "person"))
    return checked


# --- execution -------------------------------------------------------------------------------


def user_resource(desired: dict[str, Any]) -> dict[str, Any]:
    """A SCIM user body: the core schema and each extension the attributes use."""
    extensions = [key for key in desired if key.startswith("urn:")]
    return {"schemas": [USER_SCHEMA, *extensions], **desired}


def changed_operations(current: dict[str, Any], desired: dict[str, Any]) -> list[dict[str, Any]]:
    """``replace`` operations for the attributes that differ, and only those."""
    operations = []
    for attribute, value in desired.items():
        if attribute.startswith("urn:") and isinstance(value, dict):  # an extension: attribute by attribute
            now_extension = current.get(attribute) or {}
            for part, part_value in value.items():
                if now_extension.get(part) != part_value:
                    operations.append({"op": "replace", "path": f"{attribute}:{part}", "value": part_value})
        elif attribute == "name" and isinstance(value, dict):
            now = current.get("name") or {}
            for part, part_value in value.items():
                if now.get(part) != part_value:
                    operations.append({"op": "replace", "path": f"name.{part}", "value": part_value})
        elif attribute == "emails":
            have = sorted((e.get("value", "").lower(), bool(e.get("primary"))) for e in current.get("emails") or [])
            want = sorted((e.get("value", "").lower(), bool(e.get("primary"))) for e in value)
            if have != want:
                operations.append({"op": "replace", "path": "emails", "value": value})
        elif attribute == "userName":
            if str(current.get("userName", "")).lower() != str(value).lower():
                operations.append({"op": "replace", "path": "userName", "value": value})
        elif current.get(attribute) != value:
            operations.append({"op": "replace", "path": attribute, "value": value})
    return operations


def _not_theirs(found: dict[str, Any], desired: dict[str, Any]) -> str:
    """Why an account a look-up found is not the subject's, or ``""`` when it is: its externalId
    is the desired one, or else its userName is and it carries no other externalId (an account
    another identity provider tied to someone else is never taken over by its name)."""
    wanted = str(desired.get("externalId") or "")
    if wanted and matches(found, "externalId", wanted):
        return ""
    name = str(desired.get("userName") or "")
    if not (name and matches(found, "userName", name)):
        return f"the account {found.get('id')} found for {name} is not theirs"
    theirs = str(found.get("externalId") or "")
    if wanted and theirs and theirs != wanted:
        return (
            f"the account {name} in the application has externalId {theirs}, not this person's {wanted}, "
            "so it may be someone else's: nothing was written. If it is theirs, correct or clear its "
            "externalId in the application, then retry."
        )
    return ""


def execute(action: Action, scim: ScimClient, run: Run) -> dict[str, Any]:
    users = users_endpoint(action.integration)
    desired = dict(action.parameters["user"])
    account_id = action.parameters.get("user_id")
    if not account_id and action.person_id is None and action.target_user is not None:
        account_id = action.target_user.remote_id  # requested before the parameters named it
    if account_id:
        return _set_on_account(action, scim, run, f"{users}/{account_id}", desired)
    found = _find_user(action, scim, desired, run)
    if found is None:
        try:
            response = scim.request("POST", users, json=user_resource(desired))
        except ScimConflict:
            run.listing.forget(users)  # someone made it meanwhile: read afresh, then adopt it
            found = _find_user(action, scim, desired)
            if found is None:
                raise
        else:
            created = response.json()
            run.remember_user(action, created)
            return {"operation": "created", "id": created.get("id")}
    if problem := _not_theirs(found, desired):  # the look-ups return only matches: this guards the rest
        raise AmbiguousMatch(problem)
    return _brought_up_to_date(action, scim, run, f"{users}/{found['id']}", found, desired)


def _set_on_account(action: Action, scim: ScimClient, run: Run, path: str, desired: dict[str, Any]) -> dict[str, Any]:
    """An account's own attributes (an undone deprovision): that account, read by its id, never
    one found by its user name (the application may have renamed it, and given the name to another)."""
    name = desired.get("userName") or path
    try:
        found = scim.get_json(path)
    except ScimNotFound:
        raise ScimClientError(f"{name} ({path}) is no longer in the application: nothing was written") from None
    if str(found.get("id")) != path.rsplit("/", 1)[-1]:
        raise AmbiguousMatch(f"GET {path} answered the account {found.get('id')}, not the one asked for")
    # The user name was the look-up's; the account keeps the one the application gave it.
    changes = {key: value for key, value in desired.items() if key != "userName"}
    return _brought_up_to_date(action, scim, run, path, found, changes)


def _brought_up_to_date(
    action: Action, scim: ScimClient, run: Run, path: str, found: dict[str, Any], desired: dict[str, Any]
) -> dict[str, Any]:
    """The account at ``path`` (read as ``found``) given the attributes of ``desired`` that differ."""
    reactivated = found.get("active") is False and desired.get("active", True) is not False
    if reactivated:
        # A re-hire: active on its own first, so an attribute the application refuses never blocks it.
        set_active(scim, path, True)
        found = {**found, "active": True}
    operations = changed_operations(found, desired)
    replace_attributes(scim, path, operations)
    if operations or reactivated:
        found = scim.get_json(path)
        if reactivated and found.get("active") is False:
            raise ChangeNotMade(f"{path}: the application answered success but the account is still inactive")
    run.remember_user(action, found)
    return {
        "operation": "reactivated" if reactivated else ("updated" if operations else "unchanged"),
        "id": found["id"],
        "changed": [op["path"] for op in operations],
    }


def _lookup_key(attribute: str, value: str) -> tuple[str, str]:
    """How a look-up is remembered: ``userName`` is not case-exact in SCIM, ``externalId`` is."""
    return attribute, value.lower() if attribute == "userName" else value


def _find_user(
    action: Action, scim: ScimClient, desired: dict[str, Any], run: Run | None = None
) -> dict[str, Any] | None:
    """The existing account: by externalId first (a re-hire keeps it), then by userName.

    What the run's combined look-up settled is taken from it; the rest is asked for, and
    only an account that matches what was asked is ever returned (``provisioning.lookups``).
    """

    def settled(attribute: str, value: str) -> tuple[bool, dict[str, Any] | None]:
        key = _lookup_key(attribute, value)
        if run is None or key not in run.lookups:
            return False, None
        found = run.lookups[key]
        if found is AMBIGUOUS:
            raise AmbiguousMatch(
                f"several accounts in the application have {attribute} {escape_filter_value(value)}; "
                "the console will not choose one. Remove the duplicate in the application, then retry."
            )
        return True, found

    return find_user(
        scim,
        desired,
        endpoint=users_endpoint(action.integration),
        listing=run.listing if run else None,
        settled=settled,
    )


# --- the look-ups of syncs claimed together --------------------------------------------------

LOOKUP_FILTER_CHARACTERS = 2000  # a combined look-up's filter stays under this: its URL within any server's limit
AMBIGUOUS: dict[str, Any] = {"id": "(several)"}  # a combined look-up found more than one account for a clause


def prepare_batch(run: BatchRun, scim: ScimClient, syncs: list[Action]) -> None:
    """Look for the accounts of a batch's syncs together, instead of once or twice each.

    One filter joins the syncs' ``externalId eq`` and ``userName eq`` clauses with ``or``
    (RFC 7644, 3.4.2.2), and the answer settles each clause: the account that matches it, or
    none. A server that refuses the filter, answers short (``totalResults`` above what it
    sent), or sends an account that matches no clause (it ignored the filter) settles
    nothing, and each sync then looks for itself, as it does alone (and the profile learns
    that ``or`` is not to be used).
    """
    integration = syncs[0].integration
    if cannot_filter(integration) or dialect.refused(integration, "filter_or"):
        return
    syncs = [action for action in syncs if not action.parameters.get("user_id")]  # an account's own: read by its id
    users = users_endpoint(integration)
    for chunk, clauses in _lookup_chunks(syncs):
        if len(clauses) < 2:
            continue
        query = " or ".join(f"{attribute} eq {escape_filter_value(value)}" for attribute, value in clauses)
        scim.recorder = run.recorder(*chunk)  # the look-up is in each one's log
        scim.before_request = run.before_each_request(chunk[0])
        try:
            body = scim.get_json(users, {"filter": query, "count": str(max(100, len(clauses)))})
        except ScimBadRequest as refusal:
            scim.learn("filter_or", False, f"{users}: {refusal}")
            return
        except (ScimClientError, LeaseLost):
            continue
        settled = _settled(clauses, body)
        if settled is None:
            scim.learn(
                "filter_or",
                False,
                f"{users}: a filter joined with or was answered with accounts that match none of its clauses",
            )
            return
        run.lookups.update(settled)


def _lookup_chunks(syncs: list[Action]) -> Iterator[tuple[list[Action], list[tuple[str, str]]]]:
    """The syncs in runs whose joined clauses stay under ``LOOKUP_FILTER_CHARACTERS``, with those clauses."""
    chunk: list[Action] = []
    clauses: list[tuple[str, str]] = []
    length = 0
    for action in syncs:
        user = action.parameters.get("user") or {}
        own = [(attribute, str(value)) for attribute in ("externalId", "userName") if (value := user.get(attribute))]
        size = sum(len(attribute) + len(value) + 12 for attribute, value in own)  # ' eq "…"', ' or ', escapes
        if chunk and length + size > LOOKUP_FILTER_CHARACTERS:
            yield chunk, sorted(set(clauses))
            chunk, clauses, length = [], [], 0
        chunk.append(action)
        clauses.extend(own)
        length += size
    if chunk:
        yield chunk, sorted(set(clauses))


def _settled(clauses: list[tuple[str, str]], body: dict[str, Any]) -> dict[tuple[str, str], Any] | None:
    """What a combined look-up's answer says of each clause, or None if it cannot be trusted.

    Two accounts that match one clause settle it as ``AMBIGUOUS``: the sync is refused.
    """
    resources = [r for r in body.get("Resources") or [] if isinstance(r, dict) and r.get("id")]
    total = body.get("totalResults")
    if not isinstance(total, int) or total > len(resources):
        return None
    settled: dict[tuple[str, str], Any] = {_lookup_key(attribute, value): None for attribute, value in clauses}
    for resource in resources:
        hits = [
            key
            for attribute in ("externalId", "userName")
            if isinstance(resource.get(attribute), str)
            and (key := _lookup_key(attribute, resource[attribute])) in settled
            and matches(resource, attribute, key[1] if attribute == "externalId" else resource[attribute])
        ]
        if not hits:
            return None  # not what was asked for: the server ignored the filter
        for key in hits:
            earlier = settled[key]
            if earlier is not None and str(earlier.get("id")) != str(resource["id"]):
                settled[key] = AMBIGUOUS
            elif earlier is None:
                settled[key] = resource
    return settled


# --- plan and inverse ------------------------------------------------------------------------


def plan(integration: Integration, parameters: dict[str, Any]) -> list[PlannedRequest]:
    """The look-ups, then the account's POST, or its changes; or that it is up to date."""
    done = rehearse(integration, ActionType.SYNC_IDENTITIES, parameters, execute)
    writes = with_user_names(integration, done.writes)
    for write in writes:
        if write.method == "POST":
            write.note = "no account yet"
    if not writes and done.result.get("id"):
        path = f"{users_endpoint(integration)}/{done.result['id']}"
        writes = with_user_names(integration, [PlannedRequest("—", path, note="already up to date")])
    return done.steps([*done.look_ups, *writes])


def inverse(action: Action) -> list[dict[str, Any]]:
    """None: the account's earlier attributes are not kept."""
    return []


KIND = ActionKind(
    action_type=ActionType.SYNC_IDENTITIES,
    validate=validate,
    execute=execute,
    plan=plan,
    inverse=inverse,
    prepare_batch=prepare_batch,
    validate_many=validate_many,
)
