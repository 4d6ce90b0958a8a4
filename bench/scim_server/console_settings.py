"""The console's own settings, with the benchmark's query counter outermost."""

from console.settings import *  # noqa: F403
from console.settings import MIDDLEWARE

MIDDLEWARE = ["bench.scim_server.middleware.QueryCountMiddleware", *MIDDLEWARE]
