"""Create the built-in roles with their permissions."""

from typing import Any

from django.db import migrations

from console.accounts.permissions import BUILTIN_ROLE_DESCRIPTIONS, BUILTIN_ROLE_PERMISSIONS

LABELS = {"admin": "Admin", "operator": "Operator", "viewer": "Viewer", "scim_provisioner": "SCIM provisioner"}


def create_builtin_roles(apps: Any, schema_editor: Any) -> None:
    Role = apps.get_model("accounts", "Role")
    for role, permissions in BUILTIN_ROLE_PERMISSIONS.items():
        Role.objects.update_or_create(
            name=role.value,
            defaults={
                "label": LABELS[role.value],
                "description": BUILTIN_ROLE_DESCRIPTIONS[role],
                "is_builtin": True,
                "permissions": sorted(p.value for p in permissions),
            },
        )


class Migration(migrations.Migration):
    dependencies = [("accounts", "0001_initial")]
    operations = [migrations.RunPython(create_builtin_roles, migrations.RunPython.noop)]
