"""django-scim2-server's peer project."""

from bench.scim_server.peer_settings import *  # noqa: F403
from bench.scim_server.peer_settings import INSTALLED_APPS

INSTALLED_APPS = [*INSTALLED_APPS, "django_scim2_server"]
ROOT_URLCONF = "bench.scim_server.peer_django_scim2_server.urls"
