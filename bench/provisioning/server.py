"""A small, fast SCIM server for the provisioning benchmark, run as its own process.

It holds users in memory and answers what a sync needs: ``GET /Users?filter=userName eq
"x"`` (or ``externalId eq "x"``, several joined by ``or``) and ``POST /Users`` (201, or 409
for a name it has). With ``--posts-per-minute N`` it
lets at most N POSTs through in any 60 seconds and answers the rest 429 with a
``Retry-After`` of the seconds until a slot frees. ``GET /_stats`` reports what it saw;
``POST /_reset`` empties it.
"""

from __future__ import annotations

import argparse
import collections
import json
import math
import re
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

CLAUSE = re.compile(r'(userName|externalId) eq "((?:[^"\\]|\\.)*)"')
LIST = "urn:ietf:params:scim:api:messages:2.0:ListResponse"


class State:
    def __init__(self, posts_per_minute: int) -> None:
        self.lock = threading.Lock()
        self.limit = posts_per_minute
        self.reset()

    def reset(self) -> None:
        self.users: dict[str, dict[str, Any]] = {}
        self.by_external: dict[str, dict[str, Any]] = {}
        self.creates: collections.Counter[str] = collections.Counter()
        self.post_times: collections.deque[float] = collections.deque()
        self.accepted_posts: list[float] = []
        self.requests = self.posts = self.refused = self.conflicts = 0


class Handler(BaseHTTPRequestHandler):
    server: BenchServer
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body leave at once, not 40 ms apart

    def log_message(self, format: str, *args: object) -> None:
        pass

    def reply(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/scim+json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def body(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        return json.loads(self.rfile.read(length) or b"{}")

    def do_GET(self) -> None:
        state = self.server.state
        url = urlsplit(self.path)
        if url.path == "/_stats":
            with state.lock:
                duplicates = sum(1 for count in state.creates.values() if count > 1)
                self.reply(
                    200,
                    {
                        "requests": state.requests,
                        "posts": state.posts,
                        "refused": state.refused,
                        "conflicts": state.conflicts,
                        "accounts": len(state.users),
                        "duplicates": duplicates,
                        "accepted_posts": state.accepted_posts,
                    },
                )
            return
        with state.lock:
            state.requests += 1
        clauses = CLAUSE.findall(parse_qs(url.query).get("filter", [""])[0])
        found: list[dict[str, Any]] = []
        with state.lock:
            for attribute, value in clauses:
                user = state.users.get(value.lower()) if attribute == "userName" else state.by_external.get(value)
                if user is not None and user not in found:
                    found.append(user)
        self.reply(200, {"schemas": [LIST], "totalResults": len(found), "startIndex": 1, "Resources": found})

    def do_POST(self) -> None:
        state = self.server.state
        if self.path == "/_reset":
            self.body()
            with state.lock:
                state.reset()
            self.reply(200, {})
            return
        body = self.body()
        now = time.monotonic()
        with state.lock:
            state.requests += 1
            state.posts += 1
            if state.limit:
                while state.post_times and now - state.post_times[0] >= 60:
                    state.post_times.popleft()
                if len(state.post_times) >= state.limit:
                    state.refused += 1
                    wait = max(1, math.ceil(60 - (now - state.post_times[0])))
                    self.reply(429, {"status": "429", "detail": "too many requests"}, {"Retry-After": str(wait)})
                    return
                state.post_times.append(now)
            name = str(body.get("userName", "")).lower()
            if name in state.users:
                state.conflicts += 1
                self.reply(409, {"status": "409", "scimType": "uniqueness", "detail": "exists"})
                return
            user = {**body, "id": uuid.uuid4().hex}
            state.users[name] = user
            if body.get("externalId"):
                state.by_external[str(body["externalId"])] = user
            state.creates[name] += 1
            state.accepted_posts.append(time.time())
        self.reply(201, user)


class BenchServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, port: int, posts_per_minute: int) -> None:
        super().__init__(("127.0.0.1", port), Handler)
        self.state = State(posts_per_minute)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--posts-per-minute", type=int, default=0)
    args = parser.parse_args()
    BenchServer(args.port, args.posts_per_minute).serve_forever()


if __name__ == "__main__":
    main()
