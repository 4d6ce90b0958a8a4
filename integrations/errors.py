"""Why a connection to an application failed, in words people read.

httpx hands up what the operating system and OpenSSL said (``[Errno 111] Connection
refused``, ``[SSL: CERTIFICATE_VERIFY_FAILED] … (_ssl.c:1000)``); :func:`connection_error_words`
says the same thing as a sentence that names the host: "Connection refused by
127.0.0.1:9000", "TLS: the certificate of host x is not trusted (unknown certificate
authority)". The SCIM client raises its own exceptions with these words, after its
redactor has struck out the integration's credentials.
"""

from __future__ import annotations

import errno
import re
import socket
import ssl
from collections.abc import Iterator

import httpx

# How resolvers word "no such host" (glibc, musl, macOS); a socket.gaierror cause says it too.
DNS_FAILURES = (
    "name or service not known",
    "temporary failure in name resolution",
    "no address associated with hostname",
    "nodename nor servname",
    "name does not resolve",
    "getaddrinfo failed",
)
# OpenSSL's verify codes (X509_V_ERR_*) → what they mean for the admin.
CERTIFICATE_PROBLEMS = {
    2: "is not trusted (unknown certificate authority)",
    10: "has expired",
    9: "is not valid yet",
    18: "is self-signed and not trusted",
    19: "is not trusted (a self-signed certificate in its chain)",
    20: "is not trusted (unknown certificate authority)",
    21: "is not trusted (unknown certificate authority)",
    23: "has been revoked",
    62: "is for another host name",
    64: "is for another address",
}
_ERRNO_TEXT = re.compile(r"\[Errno -?\d+\]\s*")
_SSL_TEXT = re.compile(r"\[SSL(?:: [A-Z0-9_]+)?\]\s*|\s*\(_ssl\.c:\d+\)")


def _chain(error: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def is_dns_failure(error: BaseException) -> bool:
    """Whether a connection failed because the host name did not resolve."""
    return any(
        isinstance(current, socket.gaierror) or any(marker in str(current).lower() for marker in DNS_FAILURES)
        for current in _chain(error)
    )


def plain(text: str) -> str:
    """A library's message without its codes: no ``[Errno 111]``, no ``(_ssl.c:1000)``."""
    return _SSL_TEXT.sub("", _ERRNO_TEXT.sub("", text)).strip()


def _host(url: str, *, port: bool) -> str:
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError):
        return url
    host = parsed.host or url
    if not port:
        return host
    number = parsed.port or {"https": 443, "http": 80}.get(parsed.scheme)
    return f"{host}:{number}" if number else host


def _errno_of(error: BaseException) -> int | None:
    for current in _chain(error):
        if isinstance(current, OSError) and current.errno is not None and not isinstance(current, ssl.SSLError):
            return current.errno
        match = re.search(r"\[Errno (-?\d+)\]", str(current))
        if match:
            return int(match.group(1))
    return None


def _tls_words(error: BaseException, host: str) -> str | None:
    for current in _chain(error):
        if isinstance(current, ssl.SSLCertVerificationError):
            problem = CERTIFICATE_PROBLEMS.get(current.verify_code)
            if problem is None:
                problem = f"could not be verified ({plain(current.verify_message or str(current))})"
            return f"TLS: the certificate of host {host} {problem}"
    text = " ".join(str(current) for current in _chain(error))
    lowered = text.lower()
    if "certificate_verify_failed" in lowered or "certificate verify failed" in lowered:
        if "hostname mismatch" in lowered or "not valid for" in lowered:
            return f"TLS: the certificate of host {host} is for another host name"
        if "expired" in lowered:
            return f"TLS: the certificate of host {host} has expired"
        if "self-signed" in lowered or "self signed" in lowered:
            return f"TLS: the certificate of host {host} is self-signed and not trusted"
        return f"TLS: the certificate of host {host} is not trusted (unknown certificate authority)"
    if "wrong_version_number" in lowered or "wrong version number" in lowered:
        return f"TLS: host {host} did not answer in TLS (does the address start with http rather than https?)"
    ssl_error = next((current for current in _chain(error) if isinstance(current, ssl.SSLError)), None)
    if ssl_error is not None or "[ssl" in lowered:
        reason = plain(str(ssl_error) if ssl_error is not None else text) or "no reason given"
        return f"TLS: the secure connection to host {host} failed ({reason})"
    return None


def connection_error_words(error: BaseException, *, url: str, method: str = "GET", timeout: float | None = None) -> str:
    """What went wrong reaching ``url``, as a sentence that names the host (never an errno)."""
    where = _host(url, port=True)
    if isinstance(error, httpx.TimeoutException):
        after = f" after {timeout:g} s" if timeout else ""
        if isinstance(error, httpx.ConnectTimeout):
            return f"Timed out{after} connecting to {where}"
        if isinstance(error, httpx.PoolTimeout):
            return f"Timed out{after} waiting for a free connection to {where}"
        if isinstance(error, httpx.WriteTimeout):
            return f"Timed out{after} sending {method} {url}"
        return f"Timed out{after} waiting for {where} to answer {method} {url}"
    tls = _tls_words(error, _host(url, port=False))
    if tls is not None:
        return tls
    if is_dns_failure(error):
        return f"DNS: the host {_host(url, port=False)} does not resolve"
    code = _errno_of(error)
    text = " ".join(str(current) for current in _chain(error)).lower()
    if code == errno.ECONNREFUSED or "connection refused" in text:
        return f"Connection refused by {where}"
    if code == errno.ECONNRESET or "connection reset" in text:
        return f"The connection to {where} was reset (dropped by the other side)"
    if code == errno.ENETUNREACH or "network is unreachable" in text:
        return f"The network of {where} is unreachable from here"
    if code == errno.EHOSTUNREACH or "no route to host" in text:
        return f"No route to host {where}"
    if isinstance(error, httpx.RemoteProtocolError) or "disconnected without" in text:
        return f"{where} closed the connection without answering {method} {url}"
    if isinstance(error, httpx.ProxyError):
        return f"The proxy refused the connection to {where} ({plain(str(error)) or 'no reason given'})"
    detail = plain(str(error)) or type(error).__name__
    return f"The connection to {where} failed ({detail})"
