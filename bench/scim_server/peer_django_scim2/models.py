"""The user and group models django-scim2 asks for: its mixins on Django's own models."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AbstractUser, Group
from django_scim.models import AbstractSCIMGroupMixin, AbstractSCIMUserMixin


class BenchUser(AbstractSCIMUserMixin, AbstractUser):
    @property
    def scim_groups(self) -> Any:
        return BenchGroup.objects.filter(group_ptr__in=self.groups.all())


class BenchGroup(AbstractSCIMGroupMixin, Group):
    pass
