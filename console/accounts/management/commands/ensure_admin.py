"""Create the first admin if no active local admin exists.

The user name and password come from ``CONSOLE_ADMIN_USERNAME`` and
``CONSOLE_ADMIN_PASSWORD``; without a password, one is generated and printed once.
"""

from __future__ import annotations

import os
import secrets
from typing import Any

from django.core.management.base import BaseCommand

from console.accounts.models import Person, Role
from console.accounts.permissions import BuiltinRole
from console.accounts.selectors import active_local_admins
from console.accounts.services import person_create, person_set_roles


class Command(BaseCommand):
    help = "Create the first admin from CONSOLE_ADMIN_USERNAME / CONSOLE_ADMIN_PASSWORD if there is none."

    def handle(self, *args: Any, **options: Any) -> None:
        if active_local_admins().exists():
            self.stdout.write("An active admin exists; nothing to do.")
            return
        username = os.environ.get("CONSOLE_ADMIN_USERNAME", "admin").strip() or "admin"
        password = os.environ.get("CONSOLE_ADMIN_PASSWORD", "")
        generated = not password
        if generated:
            password = secrets.token_urlsafe(18)
        admin_role = Role.objects.get(name=BuiltinRole.ADMIN)
        existing = Person.objects.filter(username__iexact=username).first()
        if existing is None:
            existing = person_create(actor=None, username=username, password=password, roles=[admin_role])
        else:
            existing.set_password(password)
            existing.is_active = True
            existing.save()
            person_set_roles(actor=None, person=existing, roles=[*existing.roles.all(), admin_role])
        if generated:  # shown once on a terminal: the first sign-in asks for a password of their own
            Person.objects.filter(pk=existing.pk).update(password_change_required=True)
        if generated:
            self.stdout.write(
                self.style.WARNING(
                    f"Created the first admin.\n  user name: {username}\n  password:  {password}\n"
                    "This password is shown only now; the first sign-in asks for a new one."
                )
            )
        else:
            self.stdout.write(f"Created the first admin {username!r} with the password from CONSOLE_ADMIN_PASSWORD.")
