"""The real third-party SCIM server (scim2-server) that integrations extract from.

It runs with a bearer token, knows the enterprise extension and a vendor extension
(``Acme``), and is also served over TLS with a certificate from a CA generated here and
behind HTTP basic authentication, so those paths of the client meet a real server too.
Everything shares one in-memory storage, emptied by the ``peer`` fixture before each test.
"""

from __future__ import annotations

import base64
import datetime
import ipaddress
import json
import ssl
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

import httpx
import portpicker
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from scim2_models import Schema, SchemaExtension, ScimProvider
from scim2_server.testserver.application import BearerTokenApplication
from scim2_server.utils import load_default_resource_types, load_default_schemas, load_default_service_provider_config

SCIM = "application/scim+json"
ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
ACME = "urn:acme:params:scim:schemas:extension:acme:1.0:User"
PEER_TOKEN = "peer-token"
BASIC_USER, BASIC_PASSWORD = "peer-user", "peer-password"

ACME_SCHEMA = {
    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Schema"],
    "id": ACME,
    "name": "AcmeUser",
    "description": "Acme's own user attributes",
    "attributes": [
        {
            "name": "badgeNumber",
            "type": "string",
            "multiValued": False,
            "required": False,
            "caseExact": False,
            "mutability": "readWrite",
            "returned": "default",
            "uniqueness": "none",
            "description": "Door badge",
        },
        {
            "name": "building",
            "type": "complex",
            "multiValued": False,
            "required": False,
            "mutability": "readWrite",
            "returned": "default",
            "uniqueness": "none",
            "subAttributes": [
                {
                    "name": "floor",
                    "type": "integer",
                    "multiValued": False,
                    "required": False,
                    "mutability": "readWrite",
                    "returned": "default",
                    "uniqueness": "none",
                }
            ],
        },
    ],
}


class Peer:
    """Loads data into the SCIM server through its own API."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.http = httpx.Client(
            base_url=url, headers={"Content-Type": SCIM, "Authorization": f"Bearer {PEER_TOKEN}"}, timeout=10
        )

    def user(self, user_name: str, **extra: Any) -> dict[str, Any]:
        body = {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": user_name, **extra}
        body["schemas"] += [urn for urn in (ENTERPRISE, ACME) if urn in extra]
        response = self.http.post("/Users", json=body)
        assert response.status_code == 201, response.text
        return dict(response.json())

    def group(self, name: str, members: list[dict[str, Any]]) -> dict[str, Any]:
        body = {
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
            "displayName": name,
            "members": [{"value": m["id"], "type": "User"} for m in members],
        }
        response = self.http.post("/Groups", json=body)
        assert response.status_code == 201, response.text
        return dict(response.json())


@dataclass
class Authority:
    """A CA made for the test run, and a localhost certificate it signed."""

    ca_pem: str
    cert_file: Path
    key_file: Path


def _authority(folder: Path) -> Authority:
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test SCIM CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True
        )  # digital signature, certificate and CRL signing
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    cert_file, key_file = folder / "server.pem", folder / "server.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return Authority(ca.public_bytes(serialization.Encoding.PEM).decode(), cert_file, key_file)


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


def _serve(app: Callable[..., Iterable[bytes]], wrap: ssl.SSLContext | None = None) -> Iterator[int]:
    port = portpicker.pick_unused_port()
    httpd = make_server("localhost", port, app, handler_class=_QuietHandler)
    if wrap is not None:
        httpd.socket = wrap.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield port
    finally:
        httpd.shutdown()
        thread.join()


def _basic_to_bearer(app: Callable[..., Iterable[bytes]]) -> Callable[..., Iterable[bytes]]:
    """The same server behind basic authentication: good credentials become its bearer token."""
    good = "Basic " + base64.b64encode(f"{BASIC_USER}:{BASIC_PASSWORD}".encode()).decode()

    def basic(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        refused = environ.get("HTTP_AUTHORIZATION") != good
        environ["HTTP_AUTHORIZATION"] = "Basic refused" if refused else f"Bearer {PEER_TOKEN}"
        return app(environ, start_response)

    return basic


# --- overrides of pytest-scim2-server's fixtures -------------------------------------------


@pytest.fixture(scope="session")
def scim2_server_provider() -> ScimProvider:
    """The default schemas, the enterprise extension, and Acme's vendor extension on User."""
    schemas = [*load_default_schemas().values(), Schema.model_validate(ACME_SCHEMA)]
    resource_types = load_default_resource_types()
    user_type = resource_types["User"]
    user_type.schema_extensions = [
        *(user_type.schema_extensions or []),
        SchemaExtension.model_validate({"schema": ACME, "required": False}),
    ]
    return ScimProvider.from_discovery(schemas, resource_types.values(), config=load_default_service_provider_config())


@pytest.fixture(scope="session")
def scim2_server_app(scim2_server_storage: Any, scim2_server_service: Any) -> BearerTokenApplication:
    """scim2-server's own bearer-token application: requests without the token get 401."""
    return BearerTokenApplication(
        scim2_server_storage, scim2_server_service.provider, scim2_server_service, bearer_tokens=[PEER_TOKEN]
    )


# --- the peer and its variants ---------------------------------------------------------------


@pytest.fixture
def peer(scim2_server: Any, scim2_server_storage: Any) -> Peer:
    scim2_server_storage.resources = []
    return Peer(f"http://localhost:{scim2_server.port}")


@pytest.fixture(scope="session")
def authority(tmp_path_factory: pytest.TempPathFactory) -> Authority:
    return _authority(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="session")
def peer_tls_url(scim2_server_app: BearerTokenApplication, authority: Authority) -> Iterator[str]:
    """The same server over HTTPS, with a certificate only the generated CA vouches for."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(authority.cert_file, authority.key_file)
    for port in _serve(scim2_server_app, context):
        yield f"https://localhost:{port}"


@pytest.fixture(scope="session")
def peer_basic_url(scim2_server_app: BearerTokenApplication) -> Iterator[str]:
    """The same server behind HTTP basic authentication."""
    for port in _serve(_basic_to_bearer(scim2_server_app)):
        yield f"http://localhost:{port}"


@dataclass
class Throttled:
    """The real server behind a front that answers the first POSTs with 429 and Retry-After.

    A fault the real server cannot be made to show, in front of it rather than instead of it.
    """

    url: str
    refusals_left: int
    retry_after: int = 1


@pytest.fixture
def peer_throttled(scim2_server_app: BearerTokenApplication) -> Iterator[Throttled]:
    state = Throttled(url="", refusals_left=1)

    def front(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ["REQUEST_METHOD"] == "POST" and state.refusals_left > 0:
            state.refusals_left -= 1
            body = json.dumps({"schemas": [ERROR], "status": "429", "detail": "slow down"}).encode()
            start_response(
                "429 Too Many Requests",
                [("Content-Type", SCIM), ("Retry-After", str(state.retry_after)), ("Content-Length", str(len(body)))],
            )
            return [body]
        return scim2_server_app(environ, start_response)

    for port in _serve(front):
        state.url = f"http://localhost:{port}"
        yield state
