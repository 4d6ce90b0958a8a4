"""Middleware the benchmark adds to every server it measures, the console included."""

from __future__ import annotations

import hmac
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, HttpResponse


class QueryCountMiddleware:
    """Counts the database queries a request makes and answers them in ``X-Bench-Queries``.

    Outermost, so every query the server makes for the request is counted, authentication
    included. DEBUG stays off: a wrapper counts without keeping the SQL.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        count = 0

        def counting(execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any) -> Any:
            nonlocal count
            count += 1
            return execute(sql, params, many, context)

        with connection.execute_wrapper(counting):
            response = self.get_response(request)
        response["X-Bench-Queries"] = str(count)
        return response


class PeerBearerMiddleware:
    """Authenticates the peers' requests: neither peer package authenticates by itself.

    A bearer token (``BENCH_PEER_TOKEN``) stands for the peer's first superuser, looked up
    with one query per request, as the console looks up its API key.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        from django.contrib.auth import get_user_model
        from django.contrib.auth.models import AnonymousUser

        header = request.headers.get("Authorization", "")
        token = header.removeprefix("Bearer ").strip()
        user: Any = AnonymousUser()
        expected = getattr(settings, "BENCH_PEER_TOKEN", "")
        if token and expected and hmac.compare_digest(token, expected):
            model: Any = get_user_model()  # the peer's user model, not the console's
            user = model.objects.filter(is_superuser=True).order_by("pk").first() or user
        request.user = user
        return self.get_response(request)
