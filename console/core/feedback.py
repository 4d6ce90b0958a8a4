"""The UI's one way to show a console error: on the form field it names, or as a page message."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.http import HttpRequest

from console.core.errors import ConsoleError


def error_shown(request: HttpRequest, error: ConsoleError, form: forms.BaseForm | None = None) -> None:
    """Put ``error`` where the admin looks: beside its field, at the top of the form, or on the page."""
    if form is not None:
        field = error.field if error.field in form.fields else None
        form.add_error(field, error.message)
        return
    messages.error(request, error.message)
