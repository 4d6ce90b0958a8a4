"""A local SCIM 2.0 server over pre-serialized resources, for the extraction benchmark.

``python -m bench.extraction.server --sizes 10000,100000`` serves one application per size
under ``/s/<size>``: ``Users`` and ``Groups`` as RFC 7644 list responses paged by
``startIndex`` and ``count``, ``Schemas`` (the enterprise extension) and
``ServiceProviderConfig``, behind a bearer token. HTTP/1.1 with keep-alive, a thread per
connection. It prints ``ready <port>`` once every dataset is built.

Control routes for the benchmark: ``GET /_stats`` (the requests served since the last
call, per application and route), ``POST /s/<size>/_change?every=100`` (rename every
100th user).

scim2-server is not used here: it sorts every stored resource on each list request
(measured at about 0.18 s a page with 100k users), so it, not the client, would be timed.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from bench.extraction.dataset import SCHEMAS, Dataset, dumps, list_response

TOKEN = "bench-extraction-token"  # noqa: S105 - the local server's own, not a secret
MAX_COUNT = 1000
SERVICE_PROVIDER_CONFIG = {
    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
    "patch": {"supported": True},
    "bulk": {"supported": False, "maxOperations": 0, "maxPayloadSize": 0},
    "filter": {"supported": False, "maxResults": MAX_COUNT},
    "changePassword": {"supported": False},
    "sort": {"supported": False},
    "etag": {"supported": False},
    "authenticationSchemes": [],
}


class Stats:
    """What was asked of each application: requests per route, and each list page read."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.routes: Counter[str] = Counter()
        self.pages: Counter[str] = Counter()  # "size Users startIndex count" -> times served
        self.empty: Counter[str] = Counter()

    def take(self) -> dict[str, dict[str, int]]:
        with self.lock:
            data = {"routes": dict(self.routes), "pages": dict(self.pages), "empty": dict(self.empty)}
            self.routes, self.pages, self.empty = Counter(), Counter(), Counter()
        return data


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: BenchServer

    def log_message(self, format: str, *args: object) -> None:
        pass

    def send_body(self, status: int, body: bytes, content_type: str = "application/scim+json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def error(self, status: int, detail: str) -> None:
        body = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"], "status": str(status), "detail": detail}
        self.send_body(status, dumps(body))

    def route(self) -> tuple[Dataset | None, str, dict[str, list[str]]]:
        parts = urlsplit(self.path)
        query = parse_qs(parts.query)
        segments = [s for s in parts.path.split("/") if s]
        if len(segments) >= 2 and segments[0] == "s" and segments[1].isdigit():
            return self.server.datasets.get(int(segments[1])), "/".join(segments[2:]), query
        return None, "/".join(segments), query

    def do_GET(self) -> None:
        dataset, rest, query = self.route()
        if dataset is None and rest == "_stats":
            self.send_body(200, dumps(self.server.stats.take()), "application/json")
            return
        if self.headers.get("Authorization") != f"Bearer {TOKEN}":
            self.error(401, "bearer token required")
            return
        if dataset is None:
            self.error(404, "no such application")
            return
        stats = self.server.stats
        with stats.lock:
            stats.routes[f"{dataset.users} {rest}"] += 1
        if rest in ("Users", "Groups"):
            try:
                start = int(query.get("startIndex", ["1"])[0])
                count = min(MAX_COUNT, int(query.get("count", [str(MAX_COUNT)])[0]))
            except ValueError:
                self.error(400, "startIndex and count are integers")
                return
            items = dataset.user_json if rest == "Users" else dataset.group_json
            body = list_response(items, start, count)
            with stats.lock:
                stats.pages[f"{dataset.users} {rest} {start} {count}"] += 1
                if start > len(items):
                    stats.empty[f"{dataset.users} {rest}"] += 1
            self.send_body(200, body)
        elif rest == "Schemas":
            self.send_body(200, dumps(SCHEMAS))
        elif rest == "ServiceProviderConfig":
            self.send_body(200, dumps(SERVICE_PROVIDER_CONFIG))
        else:
            self.error(404, f"no route {rest}")

    def do_POST(self) -> None:
        dataset, rest, query = self.route()
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        if dataset is None or rest != "_change":
            self.error(404, "no such route")
            return
        changed = dataset.change_users(int(query.get("every", ["100"])[0]))
        self.send_body(200, dumps({"changed": changed}), "application/json")


class BenchServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, port: int, sizes: list[int]) -> None:
        super().__init__(("127.0.0.1", port), Handler)
        self.stats = Stats()
        base = f"http://127.0.0.1:{self.server_address[1]}"
        self.datasets = {size: Dataset(size, f"{base}/s/{size}").build() for size in sizes}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--sizes", default="100000", help="comma-separated user counts")
    args = parser.parse_args()
    server = BenchServer(args.port, [int(s) for s in args.sizes.split(",") if s])
    summary = {
        size: {"users": d.users, "groups": d.groups, "memberships": d.memberships}
        for size, d in server.datasets.items()
    }
    print(f"ready {server.server_address[1]} {json.dumps(summary)}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    sys.exit(0)


if __name__ == "__main__":
    main()
