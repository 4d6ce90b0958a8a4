"""Audit events in words: the verb as people say it, the target as "Person ada" with a link."""

from __future__ import annotations

from django.apps import apps
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString

from console.audit.models import AuditEvent

VERBS = {
    "auth.signed_in": "Signed in",
    "auth.signed_out": "Signed out",
    "auth.sign_in_failed": "Sign-in refused",
    "auth.password_changed": "Changed their password",
    "auth.second_factor_enrolled": "Set up a second factor",
    "auth.second_factor_removed": "Removed their second factor",
    "auth.second_factor_failed": "Second factor refused",
    "auth.recovery_code_used": "Signed in with a recovery code",
    "auth.recovery_codes_regenerated": "Made new recovery codes",
    "action.requested": "Action requested",
    "action.pending_approval": "Action waiting for approval",
    "action.approved": "Action approved",
    "action.queued": "Action queued",
    "action.running": "Action started",
    "action.succeeded": "Action succeeded",
    "action.failed": "Action failed",
    "action.rejected": "Action rejected",
    "action.cancelled": "Action cancelled",
    "access_request.created": "Access requested",
    "access_request.approved": "Access request approved",
    "access_request.rejected": "Access request rejected",
    "access_request.cancelled": "Access request cancelled",
    "api_key.created": "API key made",
    "api_key.revoked": "API key revoked",
    "batch.requested": "Batch requested",
    "lifecycle.policy_created": "Lifecycle policy set",
    "lifecycle.policy_changed": "Lifecycle policy changed",
    "lifecycle.mapping_created": "Birthright mapping added",
    "lifecycle.mapping_approved": "Birthright mapping approved",
    "lifecycle.mapping_rejected": "Birthright mapping rejected",
    "lifecycle.mapping_deleted": "Birthright mapping deleted",
    "lifecycle.group_sensitive": "Group marked sensitive",
    "lifecycle.group_not_sensitive": "Group no longer sensitive",
    "lifecycle.refused": "Lifecycle policy could not act",
    "batch.undo_requested": "Undo of a batch requested",
    "integration.extraction_requested": "Extraction requested",
    "integration.extraction_cancelled": "Extraction cancelled",
    "integration.payload_pushed": "Payload pushed",
    "integration.rate_limit_lowered": "Rate limit lowered after a 429",
    "person.roles_changed": "Person's roles changed",
    "person.password_set": "Person's password set",
    "revocation.verified": "Revocation verified",
    "revocation.mismatch": "Revocation not made: the application still shows the account",
    "revocation.unverified": "Revocation could not be verified",
    "scim.user.created": "Person created over SCIM",
    "scim.user.deleted": "Person deleted over SCIM",
    "scim.user.rehired": "Person re-hired over SCIM",
    "scim.group.created": "Team created over SCIM",
    "scim.group.deleted": "Team deleted over SCIM",
    "scim.group.patched": "Team changed over SCIM",
    "scim.group.replaced": "Team replaced over SCIM",
    "settings.updated": "Settings changed",
    "team.members_changed": "Team members changed",
    "team.roles_changed": "Team roles changed",
}

# Target type (the model's label) → the noun people use, the page it has, whether its number names it.
TARGETS: dict[str, tuple[str, str | None, bool]] = {
    "accounts.person": ("Person", "person_detail", False),
    "accounts.team": ("Team", "team_detail", False),
    "accounts.role": ("Role", None, False),
    "accounts.apikey": ("API key", None, False),
    "integrations.integration": ("Integration", "integration_detail", False),
    "provisioning.action": ("Action", "action_detail", True),
    "provisioning.batch": ("Batch", "batch_detail", True),
    "provisioning.accessrequest": ("Access request", "access_request_detail", True),
    "reconciliation.plan": ("Plan", None, True),
    "web.consolesettings": ("Settings", None, False),
}


def verb_words(verb: str) -> str:
    """``auth.signed_in`` → "Signed in"; an unknown verb reads as its words: ``role.created`` → "Role created"."""
    if verb in VERBS:
        return VERBS[verb]
    text = " ".join(part for part in verb.replace("_", " ").replace(".", " ").split())
    return text[:1].upper() + text[1:]


def _noun(target_type: str) -> str:
    if target_type in TARGETS:
        return TARGETS[target_type][0]
    try:
        noun = str(apps.get_model(target_type)._meta.verbose_name)
    except (LookupError, ValueError):
        noun = target_type.rsplit(".", 1)[-1].replace("_", " ")
    return noun[:1].upper() + noun[1:]


def target_words(target_type: str, target_id: str, label: str) -> str:
    """ "Person ada", "Action 18: deprovision identity jane@example.com", "Integration Slack"."""
    if not target_type:
        return label
    noun = _noun(target_type)
    numbered = TARGETS.get(target_type, ("", None, False))[2]
    prefix = f"{noun.lower()} {target_id}: "
    if label.lower().startswith(prefix):  # a label that already names itself ("batch 3: …")
        label = label[len(prefix) :]
    elif label.lower() == prefix[:-2]:  # a label that is only its name ("plan 3")
        label = ""
    if numbered and target_id:
        return f"{noun} {target_id}: {label[:1].lower()}{label[1:]}" if label else f"{noun} {target_id}"
    if label:
        return f"{noun} {label}"
    return f"{noun} {target_id}".strip()


def target_url(target_type: str, target_id: str) -> str:
    """The page of the target, where it has one ('' where not)."""
    url_name = TARGETS.get(target_type, ("", None, False))[1]
    if not url_name or not target_id.isdigit():
        return ""
    try:
        return reverse(url_name, args=[int(target_id)])
    except NoReverseMatch:
        return ""


def target_html(event: AuditEvent) -> SafeString | str:
    """The target in words, linked to its page where it has one."""
    text = target_words(event.target_type, event.target_id, event.target_label)
    url = target_url(event.target_type, event.target_id)
    return format_html('<a href="{}">{}</a>', url, text) if url else text


def verb_html(event: AuditEvent) -> SafeString:
    """The verb in words; the stored verb (what the filter takes) on hover."""
    return format_html('<span class="verb" title="{}">{}</span>', event.verb, verb_words(event.verb))
