"""The one filter of the Drift tab and of ``/api/v1/integrations/{id}/drift/``: the category."""

from __future__ import annotations

import django_filters

from reconciliation.models import DriftCategory, DriftItem


class DriftItemFilterSet(django_filters.FilterSet):
    category = django_filters.ChoiceFilter(
        label="Category", choices=DriftCategory.choices, empty_label="Every category"
    )

    class Meta:
        model = DriftItem
        fields = ["category"]
