"""Console permissions and the built-in role matrix.

A role is a named bundle of permissions. A person's permissions are the union over
their effective roles (direct roles and the roles of every team they are in).
"""

from __future__ import annotations

from enum import StrEnum


class Perm(StrEnum):
    """Everything the console checks. The matrix below is written out in the README."""

    VIEW = "console.view"  # read every page and resource of the console
    EXTRACT = "integrations.extract"  # trigger an extraction
    REQUEST_ACTIONS = "actions.request"  # request actions and access
    APPROVE = "actions.approve"  # approve or reject actions and access requests
    MANAGE_INTEGRATIONS = "integrations.manage"  # add, edit, delete integrations
    MANAGE_SETTINGS = "settings.manage"  # console-wide settings
    MANAGE_PEOPLE = "people.manage"  # people, teams, roles, everyone's API keys
    SCIM_PROVISION = "scim.provision"  # reach /scim/v2 (identity providers)


class BuiltinRole(StrEnum):
    ADMIN = "admin"
    OPERATOR = "operator"
    VIEWER = "viewer"
    SCIM_PROVISIONER = "scim_provisioner"


BUILTIN_ROLE_PERMISSIONS: dict[BuiltinRole, frozenset[Perm]] = {
    BuiltinRole.VIEWER: frozenset({Perm.VIEW}),
    BuiltinRole.OPERATOR: frozenset({Perm.VIEW, Perm.EXTRACT, Perm.REQUEST_ACTIONS}),
    BuiltinRole.ADMIN: frozenset(Perm),
    BuiltinRole.SCIM_PROVISIONER: frozenset({Perm.SCIM_PROVISION}),
}

BUILTIN_ROLE_DESCRIPTIONS: dict[BuiltinRole, str] = {
    BuiltinRole.VIEWER: "Reads every page and API resource.",
    BuiltinRole.OPERATOR: "Viewer, and also triggers extractions and requests actions.",
    BuiltinRole.ADMIN: "Everything: approvals, integrations, settings, people and roles.",
    BuiltinRole.SCIM_PROVISIONER: "Only reaches /scim/v2, for an identity provider's API key.",
}

# Holding one of these lets a person use the console's UI and REST API.
UI_PERMISSION = Perm.VIEW
