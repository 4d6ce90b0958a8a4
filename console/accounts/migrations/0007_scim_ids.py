"""SCIM ids: a random UUID for every person and team, so a User and a Group never share one.

The column is added empty, filled a batch of rows at a time (a UUID made per row: a
column default would give every existing row the same one), then made unique.
"""

import uuid
from typing import Any

from django.db import migrations, models

BATCH = 1000


def fill_scim_ids(apps: Any, schema_editor: Any) -> None:
    for name in ("Person", "Team"):
        model = apps.get_model("accounts", name)
        rows = model._base_manager.using(schema_editor.connection.alias)
        keys = list(rows.filter(scim_id__isnull=True).order_by("pk").values_list("pk", flat=True))
        for start in range(0, len(keys), BATCH):
            rows.bulk_update([model(pk=pk, scim_id=uuid.uuid4()) for pk in keys[start : start + BATCH]], ["scim_id"])


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0006_case_insensitive_name_indexes"),
    ]

    operations = [
        migrations.AddField(
            model_name="person",
            name="scim_id",
            field=models.UUIDField(editable=False, null=True, verbose_name="SCIM id"),
        ),
        migrations.AddField(
            model_name="team",
            name="scim_id",
            field=models.UUIDField(editable=False, null=True, verbose_name="SCIM id"),
        ),
        migrations.RunPython(fill_scim_ids, migrations.RunPython.noop, elidable=True),
        migrations.AlterField(
            model_name="person",
            name="scim_id",
            field=models.UUIDField(default=uuid.uuid4, editable=False, unique=True, verbose_name="SCIM id"),
        ),
        migrations.AlterField(
            model_name="team",
            name="scim_id",
            field=models.UUIDField(default=uuid.uuid4, editable=False, unique=True, verbose_name="SCIM id"),
        ),
    ]
