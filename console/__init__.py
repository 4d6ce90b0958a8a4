"""Lifecycle Console: the Django project and the console's own house."""

from console.celery import app as celery_app

__all__ = ["celery_app"]
