"""The one SCIM client of the console, over httpx.

Authentication, the integration's own CA, timeouts and ``application/scim+json``;
paging that survives servers that ignore ``count``, return short pages or report a
wrong ``totalResults``; and one exception family by cause. One connection pool per
worker process per integration, reused across tasks.
"""

from __future__ import annotations

import functools
import itertools
import json
import random
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urljoin

import httpx
import orjson
import pydantic
from django.utils import timezone
from scim2_models import Context, Group, ListResponse, Resource, User

from console.core.redaction import NO_SECRETS, SecretRedactor, integration_redactor, redact
from integrations.errors import connection_error_words, is_dns_failure
from integrations.models import Integration

SCIM_JSON = "application/scim+json"
# Reads are idempotent, so a transient failure is tried again (Retry-After honoured up to
# MAX_RETRY_AFTER seconds; beyond that the run fails and says when the server wants us back).
READ_ATTEMPTS = 4
MAX_RETRY_AFTER = 120.0
LIST_ENVELOPE_KEYS = ("schemas", "totalResults", "startIndex", "itemsPerPage")
# resource_problem checks a multi-valued attribute (a group's members) by this many of its values.
SAMPLE_VALUES = 100
# scim2-models checks the first SAMPLE_FIRST_PAGES pages of a list, then one in
# SAMPLE_EVERY_PAGES: checking every page would cost a tenth of reading it.
SAMPLE_FIRST_PAGES = 5
SAMPLE_EVERY_PAGES = 25


def sampled(page_number: int) -> bool:
    """Whether page ``page_number`` (from 1) of a list is checked with scim2-models."""
    return page_number <= SAMPLE_FIRST_PAGES or page_number % SAMPLE_EVERY_PAGES == 0


# Built once: pydantic caches parametrized models only weakly, and rebuilding one costs milliseconds.
USER_LIST_RESPONSE = ListResponse[User]


@dataclass
class CallRecord:
    """One request as the action log keeps it (the Authorization header is never part of it).

    The answer and the error come without the integration's credentials; ``redactor`` strikes
    them out of the rest before it is stored.
    """

    method: str
    url: str
    request_body: Any = None
    started_at: float = field(default_factory=time.time)
    status: int | None = None
    response_text: str = ""
    duration_ms: int = 0
    error: str = ""
    redactor: SecretRedactor = field(default=NO_SECRETS, repr=False, compare=False)


class ScimClientError(Exception):
    """Something went wrong talking to an integration; the message names the cause."""

    status: int | None = None  # the HTTP status of an answer that arrived; None when none did


class ScimNotFound(ScimClientError):
    pass


class ScimConflict(ScimClientError):
    pass


class ScimBadRequest(ScimClientError):
    pass


class ScimNotImplemented(ScimBadRequest):
    """501: the application does not offer this at all; asking again will not change that."""


class ScimAuthenticationFailed(ScimClientError):
    pass


class ScimBadResponse(ScimClientError):
    """The answer is not SCIM (HTML, invalid JSON, a page that never ends)."""


class ScimTlsError(ScimClientError):
    """The certificate could not be verified (unknown CA, wrong name, expired)."""


class ScimTransient(ScimClientError):
    """Worth retrying: 429, 5xx (but 501), timeouts, refused or dropped connections."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ScimDnsError(ScimTransient):
    """The host name does not resolve (often a typo; sometimes a resolver that is down)."""


def retry_after_seconds(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, (parsedate_to_datetime(value) - timezone.now()).total_seconds())
    except (TypeError, ValueError):
        return None


def escape_filter_value(value: str) -> str:
    """A string literal for a SCIM filter: quotes and backslashes escaped."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def verify_setting(integration: Integration) -> ssl.SSLContext:
    """The integration's own CA alone where it has one; else the process's shared default context."""
    if integration.ca_certificate.strip():
        return ssl.create_default_context(cadata=integration.ca_certificate)
    return default_ssl_context()


@functools.cache
def default_ssl_context() -> ssl.SSLContext:
    """The CA bundle httpx trusts by default (``SSL_CERT_FILE`` and ``SSL_CERT_DIR`` honoured),
    loaded once a process rather than for every connection pool (a tenth of a second each)."""
    return httpx.create_ssl_context()


def warm_up() -> None:
    """Load, in a fresh worker process, what its first SCIM request would otherwise load."""
    default_ssl_context()
    StatelessClient().close()  # httpx imports its transport's modules on first use


class _NoCookies(httpx.Cookies):
    """A cookie jar that keeps nothing."""

    def extract_cookies(self, response: httpx.Response) -> None:
        return None


class StatelessClient(httpx.Client):
    """An httpx client that neither keeps nor sends back the cookies an application sets.

    SCIM is stateless and authenticates each request, and one pool serves every task of a
    process that talks to the integration, so a cookie set for one task must not ride along
    on the next. Not reading them also spares wrapping each response for ``http.cookiejar``.
    """

    @property
    def cookies(self) -> httpx.Cookies:
        return _NoCookies()

    @cookies.setter
    def cookies(self, cookies: Any) -> None:
        pass


_pool_lock = threading.Lock()
_pools: dict[tuple[int, str], httpx.Client] = {}


def http_client_for(integration: Integration) -> httpx.Client:
    """This process's pool for the integration; a new one after its settings change."""
    key = (integration.pk, integration.updated_at.isoformat())
    with _pool_lock:
        client = _pools.get(key)
        if client is None:
            for stale in [k for k in _pools if k[0] == integration.pk]:
                _pools.pop(stale).close()
            client = StatelessClient(
                verify=verify_setting(integration),
                timeout=httpx.Timeout(integration.timeout_seconds),
                limits=httpx.Limits(max_connections=max(1, integration.max_concurrency)),
            )
            _pools[key] = client
        return client


class ScimClient:
    def __init__(
        self,
        integration: Integration,
        http: httpx.Client | None = None,
        sleep: Callable[[float], None] = time.sleep,
        read_attempts: int = READ_ATTEMPTS,
        recorder: Callable[[CallRecord], None] | None = None,
    ) -> None:
        self.integration = integration
        self.http = http or http_client_for(integration)
        self.base = integration.base_url.rstrip("/") + "/"
        self.requests_made = 0
        self.total_results: int | None = None  # totalResults of the last page read, if the server said
        self.sleep = sleep
        self.read_attempts = read_attempts
        self.recorder = recorder
        self.before_request: Callable[[], None] | None = None  # e.g. a shared rate limit
        # The integration's credentials in every form, struck out of whatever comes back: an
        # application may echo the Authorization header in a body or an error.
        self.redactor = integration_redactor(integration)
        # What this client learned of the application's dialect (integrations/dialect.py);
        # saved at once unless ``defer_learning`` (extraction saves it when the run ends).
        self.learned: dict[str, tuple[Any, str]] = {}
        self.defer_learning = False

    def headers(self) -> dict[str, str]:
        headers = {"Accept": SCIM_JSON, "Content-Type": SCIM_JSON}
        if self.integration.auth_type == Integration.AuthType.BEARER and self.integration.bearer_token:
            headers["Authorization"] = f"Bearer {self.integration.bearer_token}"
        return headers

    @functools.cached_property
    def _headers_and_auth(self) -> tuple[dict[str, str], httpx.BasicAuth | None]:
        """What every request carries, built once (the credentials are decrypted once per client)."""
        auth = None
        if self.integration.auth_type == Integration.AuthType.BASIC:
            auth = httpx.BasicAuth(self.integration.basic_username, self.integration.basic_password)
        return self.headers(), auth

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """One request; with a recorder, what was sent and what came back is handed to it."""
        if self.before_request is not None:  # e.g. waiting for the integration's rate limit
            self.before_request()
        if self.recorder is None:
            return self._request(method, path, **kwargs)
        started = time.perf_counter()
        record = CallRecord(
            method=method,
            url=urljoin(self.base, path.lstrip("/")),
            request_body=kwargs.get("json"),
            redactor=self.redactor,
        )
        if kwargs.get("params"):
            record.url += "?" + str(httpx.QueryParams(kwargs["params"]))
        try:
            response = self._request(method, path, response_sink=record, **kwargs)
        except ScimClientError as exc:
            record.error = redact(str(exc), secrets=self.redactor)
            raise
        finally:
            record.duration_ms = int((time.perf_counter() - started) * 1000)
            self.recorder(record)
        return response

    def _request(
        self, method: str, path: str, response_sink: CallRecord | None = None, **kwargs: Any
    ) -> httpx.Response:
        url = urljoin(self.base, path.lstrip("/"))
        headers, auth = self._headers_and_auth
        if "headers" in kwargs:  # a request's own (If-Match, say) beside those every request carries
            headers = {**headers, **kwargs.pop("headers")}
        self.requests_made += 1
        try:
            response = self.http.request(method, url, headers=headers, auth=auth, **kwargs)
        except httpx.TransportError as exc:
            # In words (integrations.errors), then without the integration's credentials.
            words = redact(
                connection_error_words(exc, url=url, method=method, timeout=self.integration.timeout_seconds),
                secrets=self.redactor,
            )
            if isinstance(exc, httpx.ConnectError) and words.startswith("TLS: the certificate"):
                raise ScimTlsError(words) from exc
            if isinstance(exc, httpx.ConnectError) and is_dns_failure(exc):
                raise ScimDnsError(words) from exc
            raise ScimTransient(words) from exc
        response = self._without_secrets(response)
        if response_sink is not None:
            response_sink.status = response.status_code
            response_sink.response_text = response.text
        try:
            self.raise_for_status(method, url, response)
        except ScimClientError as refusal:
            refusal.status = response.status_code
            raise
        return response

    def _without_secrets(self, response: httpx.Response) -> httpx.Response:
        """The response, or where the application echoed the integration's credentials (in
        its body or a header), a copy with each struck out.

        A page of resources is only searched for a few strings (about 15 us for a page of a
        hundred users, a tenth of parsing it); it is parsed and written again only when it
        holds one.
        """
        redactor = self.redactor
        if not redactor or not (
            redactor.found_in(response.content) or any(redactor.found_in(value) for _, value in response.headers.raw)
        ):
            return response
        try:
            # JSON value by value, whatever escapes the application wrote it with; written
            # again as ASCII, which reads the same whatever charset the response names.
            content = json.dumps(redactor.values(parse_json(response))).encode("ascii")
        except ValueError:  # not JSON: as text
            content = redactor.text(response.text).encode(response.encoding or "utf-8", errors="replace")
        headers = [
            (name, redactor.text(value))
            for name, value in response.headers.multi_items()
            if name.lower() not in ("content-length", "content-encoding", "transfer-encoding")
        ]
        return httpx.Response(response.status_code, headers=headers, content=content, request=response.request)

    def raise_for_status(self, method: str, url: str, response: httpx.Response) -> None:
        status = response.status_code
        if status < 400:
            return
        detail = scim_detail(response, self.redactor.text)
        where = self.redactor.text(f"{method} {url} answered {status}")
        if status == 501:
            raise ScimNotImplemented(f"{where}: not implemented{detail}")
        if status == 429:  # the application's limit is below ours: lower ours (integrations/rate_limits.py)
            from integrations.rate_limits import learn_from_429

            learn_from_429(self.integration, retry_after_seconds(response.headers.get("Retry-After")))
        if status == 429 or status >= 500:
            raise ScimTransient(f"{where}{detail}", retry_after_seconds(response.headers.get("Retry-After")))
        if status in (401, 403):
            raise ScimAuthenticationFailed(f"{where}: the credentials were refused{detail}")
        if status == 404:
            raise ScimNotFound(f"{where}: not found{detail}")
        if status == 409:
            raise ScimConflict(f"{where}: conflict{detail}")
        raise ScimBadRequest(f"{where}{detail}")

    def backoff_seconds(self, attempt: int, error: ScimTransient) -> float:
        """Retry-After when the server gave one, else exponential backoff with full jitter."""
        if error.retry_after is not None:
            if error.retry_after > MAX_RETRY_AFTER:
                raise error
            return error.retry_after
        return random.uniform(0, min(30.0, 0.5 * 2**attempt))  # noqa: S311 - jitter, not a secret

    def get_json(self, path: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        """GET a JSON object, retrying transient failures (reads are safe to repeat)."""
        for attempt in range(self.read_attempts):
            try:
                return self._get_json_once(path, params)
            except ScimTransient as error:
                if attempt == self.read_attempts - 1:
                    raise
                self.sleep(self.backoff_seconds(attempt, error))
        raise AssertionError("unreachable")

    def _get_json_once(self, path: str, params: dict[str, Any] | None) -> dict[str, Any]:
        response = self.request("GET", path, params=params)
        try:
            body = parse_json(response)
        except ValueError as exc:
            kind = response.headers.get("Content-Type", "unknown content")
            raise ScimBadResponse(f"GET {path} did not answer SCIM JSON (got {kind})") from exc
        if not isinstance(body, dict):
            raise ScimBadResponse(f"GET {path} did not answer a JSON object")
        return body

    def learn(self, capability: str, value: Any, note: str = "") -> None:
        """Remember what the application showed of ``capability`` (see integrations/dialect.py)."""
        from integrations import dialect

        self.learned[capability] = (value, note)
        if not self.defer_learning:
            dialect.learn(self.integration, capability, value, note=note)

    def save_learned(self) -> None:
        """Save what was learned while ``defer_learning`` held."""
        from integrations import dialect

        for capability, (value, note) in self.learned.items():
            dialect.learn(self.integration, capability, value, note=note)

    def first_page(self, endpoint: str, params: dict[str, Any], count: int) -> tuple[dict[str, Any], bool]:
        """The first page of a list, and whether to go on sending ``count``.

        Some applications answer 400 or 500 to any ``count``. When the first page with
        ``count`` fails (after its retries) for a reason an answer gave, and the same page
        without ``count`` is answered, the application refuses ``count``: it is learned, and
        the list is read at the application's own page size.
        """
        from integrations import dialect

        if dialect.refused(self.integration, "count"):
            return self.get_json(endpoint, {**params, "startIndex": 1}), False
        try:
            return self.get_json(endpoint, {**params, "startIndex": 1, "count": count}), True
        except (ScimTransient, ScimBadRequest) as refusal:
            if refusal.status is None or refusal.status == 429:  # no answer, or a rate limit: not count
                raise
            try:
                body = self.get_json(endpoint, {**params, "startIndex": 1})
            except ScimClientError:
                raise refusal from None
            self.learn("count", False, f"{endpoint}: {refusal}; the same page without count was answered")
            return body, False

    def pages(
        self, endpoint: str, *, page_size: int | None = None, params: dict[str, Any] | None = None
    ) -> Iterator[list[dict[str, Any]]]:
        """Every resource of ``endpoint``, a page at a time, whatever the server's quirks.

        Without ``count`` (an application that refuses it) the application's own page size
        holds: the list ends at an empty page or once ``totalResults`` resources were read.
        """
        count = page_size or self.integration.page_size
        start = 1
        previous_first: Any = object()
        with_count = True
        for number in itertools.count(1):
            if number == 1:
                body, with_count = self.first_page(endpoint, dict(params or {}), count)
            elif with_count:
                body = self.get_json(endpoint, {**(params or {}), "startIndex": start, "count": count})
            else:
                body = self.get_json(endpoint, {**(params or {}), "startIndex": start})
            resources = list_resources(endpoint, body, validate=sampled(number))
            total = body.get("totalResults")
            self.total_results = total if isinstance(total, int) else None
            if not resources:
                return
            first = resources[0].get("id") if isinstance(resources[0], dict) else None
            if first is not None and first == previous_first:
                raise ScimBadResponse(f"{endpoint}: the server repeats the same page (it ignores startIndex)")
            previous_first = first
            yield resources
            start += len(resources)
            # A short page that lands exactly on the reported total is the last one. Anything
            # else (a total we have already passed is wrong) asks on until an empty page.
            if len(resources) < count and isinstance(total, int) and start - 1 == total:
                return
            if not with_count and isinstance(total, int) and start - 1 >= total:
                return  # the application's own page size: no short page to tell the end by


def parse_json(response: httpx.Response) -> Any:
    """The response's JSON: orjson on its bytes (UTF-8, as RFC 8259 has it), at about twice the
    speed of the standard library on a page of resources; the standard library, by the
    response's charset, for what orjson refuses (another encoding, NaN, integers past 64
    bits). ValueError when neither reads it.
    """
    try:
        return orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return response.json()


def list_resources(endpoint: str, body: dict[str, Any], *, validate: bool = True) -> list[dict[str, Any]]:
    """The resources of a ListResponse, after scim2-models has validated its envelope (with ``validate``).

    Resources are kept as the application sent them (vendors add attributes freely and the
    full resource is stored); extraction skips any without an ``id``. Without ``validate``
    (pages between samples) only what paging relies on is checked: a list of resources.
    """
    if "totalResults" not in body and "Resources" not in body:
        keys = ", ".join(sorted(str(key) for key in body)[:5]) or "none"
        raise ScimBadResponse(
            f"{endpoint}: not a SCIM response (no totalResults or Resources; its keys: {keys}). "
            "Is the base URL the application's SCIM root?"
        )
    resources = body.get("Resources") or []
    if not isinstance(resources, list):
        raise ScimBadResponse(f"{endpoint}: Resources is not a list")
    if not validate:
        return [resource for resource in resources if isinstance(resource, dict)]
    envelope = {key: body[key] for key in LIST_ENVELOPE_KEYS if key in body}
    try:
        USER_LIST_RESPONSE.model_validate({**envelope, "Resources": []}, scim_ctx=Context.RESOURCE_QUERY_RESPONSE)
    except pydantic.ValidationError as exc:
        problem = exc.errors()[0]
        where = ".".join(str(part) for part in problem["loc"]) or "body"
        raise ScimBadResponse(f"{endpoint}: not a SCIM list response ({where}: {problem['msg']})") from exc
    return [resource for resource in resources if isinstance(resource, dict)]


def _core_attributes(model: type[Resource[Any]]) -> frozenset[str]:
    # SCIM attribute names are case-insensitive: userName, username and user_name are one.
    return frozenset(name.replace("_", "").lower() for name in model.model_fields if name != "schemas")


CORE_MODELS: dict[str, tuple[type[Resource[Any]], str, frozenset[str]]] = {
    "User": (User, "urn:ietf:params:scim:schemas:core:2.0:User", _core_attributes(User)),
    "Group": (Group, "urn:ietf:params:scim:schemas:core:2.0:Group", _core_attributes(Group)),
}


def resource_problem(kind: str, resource: dict[str, Any]) -> str:
    """Why a User or Group is not valid SCIM by scim2-models, or "" when it is.

    Only the core attributes are checked: extensions are the application's own, and vendors
    add attributes freely. It costs about 0.1 ms a resource, as much again as storing it,
    so extraction checks a sample (the first resource of each page), not every one; and a
    multi-valued attribute by its first SAMPLE_VALUES values (a group of 50,000 members
    would take seconds).
    """
    model, schema, names = CORE_MODELS[kind]
    core = {
        key: value[:SAMPLE_VALUES] if isinstance(value, list) else value
        for key, value in resource.items()
        if key.lower() in names
    }
    core["schemas"] = [schema]
    try:
        model.model_validate(core, scim_ctx=Context.RESOURCE_QUERY_RESPONSE)
    except pydantic.ValidationError as exc:
        problem = exc.errors()[0]
        where = ".".join(str(part) for part in problem["loc"]) or "resource"
        return f"{kind} {resource.get('id', '?')}: {where}: {problem['msg']}"
    return ""


def scim_detail(response: httpx.Response, redact: Callable[[str], str] = str) -> str:
    """The ``detail`` of a SCIM error, ``redact``-ed before it is cut short (so no part of a secret is left)."""
    try:
        body = response.json()
    except ValueError:
        return ""
    if isinstance(body, dict) and body.get("detail"):
        return f": {redact(str(body['detail']))[:300]}"
    return ""
