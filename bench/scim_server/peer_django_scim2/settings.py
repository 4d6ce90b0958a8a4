"""django-scim2's peer project."""

from bench.scim_server.peer_settings import *  # noqa: F403
from bench.scim_server.peer_settings import INSTALLED_APPS, MIDDLEWARE

INSTALLED_APPS = [*INSTALLED_APPS, "django_scim", "bench.scim_server.peer_django_scim2"]
MIDDLEWARE = [*MIDDLEWARE, "django_scim.middleware.SCIMAuthCheckMiddleware"]
ROOT_URLCONF = "bench.scim_server.peer_django_scim2.urls"
AUTH_USER_MODEL = "peer_django_scim2.BenchUser"
SCIM_SERVICE_PROVIDER = {
    "NETLOC": "127.0.0.1",
    "SCHEME": "http",
    "GROUP_MODEL": "bench.scim_server.peer_django_scim2.models.BenchGroup",
    "AUTHENTICATION_SCHEMES": [{"type": "oauthbearertoken", "name": "Bearer", "description": "bench token"}],
}
