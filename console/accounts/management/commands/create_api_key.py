"""``manage.py create_api_key USERNAME [--name NAME]``: print a new key, for automation."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from console.accounts.models import Person
from console.accounts.services import AccessError, api_key_create


class Command(BaseCommand):
    help = "Create an API key for a person and print it (the only time it is shown)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--name", default="created from the command line")

    def handle(self, *args: Any, username: str, name: str, **options: Any) -> None:
        person = Person.objects.filter(username__iexact=username).first()
        if person is None:
            raise CommandError(f"No person has the user name {username!r}.")
        try:
            created = api_key_create(actor=person, owner=person, name=name)
        except AccessError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(created.token)
