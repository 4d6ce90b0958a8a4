"""Sign-in through the company's identity provider: OpenID Connect, authorization code with PKCE.

Authlib speaks the protocol (the authorization request with its PKCE challenge, the token
request); joserfc, Authlib's JOSE library, checks the ID token's signature against the
provider's published keys, and its ``iss``, ``aud``, ``exp`` and ``nonce``. Who may then
sign in is the console's own rule (:func:`oidc_person`): someone who exists, is active and
holds ``console.view``. While SCIM provisioning is on, sign-in never creates or changes a
person; while it is off, an admin may let it create unknown people with a default role.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx
from authlib.common.security import generate_token
from authlib.integrations.httpx_client import OAuth2Client
from django.core.cache import cache
from django.db import transaction
from django.http import HttpRequest
from django.urls import reverse
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from console.accounts.models import Person, Source
from console.accounts.permissions import UI_PERMISSION
from console.accounts.services import person_create
from console.accounts.usernames import person_for_sign_in
from console.core.crypto import decrypt, encrypt
from console.core.errors import ConsoleError
from console.core.models import ConsoleSettings

logger = logging.getLogger(__name__)

DISCOVERY_TTL_SECONDS = 60 * 60
HTTP_TIMEOUT_SECONDS = 10.0
PENDING_SESSION_FIELD = "oidc_pending"
PENDING_MAX_AGE_SECONDS = 10 * 60
ID_TOKEN_SESSION_FIELD = "oidc_id_token"  # noqa: S105 - a session key, not a secret
METHOD_SESSION_FIELD = "sign_in_method"
CLOCK_LEEWAY_SECONDS = 60
# Signatures by the provider's published keys only: never "none", never a shared secret.
ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA")


class OidcError(ConsoleError):
    """Sign-in through the provider failed (400); ``cause`` is what the audit log records."""

    def __init__(self, cause: str, message: str) -> None:
        super().__init__(message)
        self.cause = cause


# Causes, as the audit log names them.
BAD_TOKEN = "bad token"  # noqa: S105 - a cause, not a secret
PROVIDER_ERROR = "provider error"
UNKNOWN_PERSON = "unknown person"
INACTIVE = "inactive"
NO_ROLE = "no role"
NOT_CONFIGURED = "not configured"


@dataclass(frozen=True)
class OidcConfig:
    issuer: str
    client_id: str
    client_secret: str
    scopes: str
    username_claim: str
    label: str

    @classmethod
    def from_settings(cls, current: ConsoleSettings) -> OidcConfig:
        if not current.oidc_ready:
            raise OidcError(NOT_CONFIGURED, "Sign-in with the identity provider is not set up.")
        scopes = current.oidc_scopes.split()
        if "openid" not in scopes:
            scopes.insert(0, "openid")
        return cls(
            issuer=current.oidc_issuer.rstrip("/"),
            client_id=current.oidc_client_id,
            client_secret=current.oidc_client_secret,
            scopes=" ".join(scopes),
            username_claim=current.oidc_username_claim,
            label=current.oidc_button_label,
        )


def issuer_allowed(url: str) -> bool:
    """HTTPS, or plain HTTP to this machine only (a provider run beside the console for trials)."""
    parts = urlsplit(url)
    if parts.scheme == "https":
        return bool(parts.hostname)
    if parts.scheme != "http" or not parts.hostname:
        return False
    if parts.hostname == "localhost":
        return True
    try:
        return ipaddress.ip_address(parts.hostname).is_loopback
    except ValueError:
        return False


def _cache_key(kind: str, value: str) -> str:
    return f"oidc:{kind}:{hashlib.sha256(value.encode()).hexdigest()[:32]}"


def _get_json(url: str) -> dict[str, Any]:
    if not issuer_allowed(url):
        raise OidcError(PROVIDER_ERROR, "The identity provider's addresses must use HTTPS.")
    try:
        response = httpx.get(url, timeout=HTTP_TIMEOUT_SECONDS, follow_redirects=False)
        response.raise_for_status()
        body = response.json()
    except (httpx.HTTPError, ValueError) as exc:
        logger.warning("oidc provider read failed", extra={"url": url, "error": str(exc)})
        raise OidcError(PROVIDER_ERROR, "The identity provider could not be reached.") from exc
    if not isinstance(body, dict):
        raise OidcError(PROVIDER_ERROR, "The identity provider answered something unexpected.")
    return body


def discovery(issuer: str, *, refresh: bool = False) -> dict[str, Any]:
    """The provider's discovery document, read once an hour (kept in the shared cache)."""
    issuer = issuer.rstrip("/")
    key = _cache_key("discovery", issuer)
    document = None if refresh else cache.get(key)
    if document is None:
        document = _get_json(f"{issuer}/.well-known/openid-configuration")
        if str(document.get("issuer", "")).rstrip("/") != issuer:
            raise OidcError(PROVIDER_ERROR, "The provider's discovery document names another issuer.")
        for needed in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
            if not document.get(needed):
                raise OidcError(PROVIDER_ERROR, f"The provider's discovery document has no {needed}.")
        cache.set(key, document, DISCOVERY_TTL_SECONDS)
    return document


def discovery_forget(issuer: str) -> None:
    """Forget a cached document (the issuer changed in the settings)."""
    cache.delete(_cache_key("discovery", issuer.rstrip("/")))


def provider_keys(jwks_uri: str, *, refresh: bool = False) -> KeySet:
    key = _cache_key("jwks", jwks_uri)
    keys = None if refresh else cache.get(key)
    if keys is None:
        keys = _get_json(jwks_uri)
        cache.set(key, keys, DISCOVERY_TTL_SECONDS)
    try:
        return KeySet.import_key_set(keys)  # type: ignore[arg-type]
    except (JoseError, ValueError, TypeError) as exc:
        raise OidcError(PROVIDER_ERROR, "The provider's keys could not be read.") from exc


def callback_url(request: HttpRequest) -> str:
    return request.build_absolute_uri(reverse("oidc_callback"))


def _client(config: OidcConfig, document: dict[str, Any], request: HttpRequest) -> OAuth2Client:
    methods = document.get("token_endpoint_auth_methods_supported") or ["client_secret_basic"]
    auth_method = "client_secret_basic" if "client_secret_basic" in methods else "client_secret_post"
    return OAuth2Client(
        client_id=config.client_id,
        client_secret=config.client_secret or None,
        scope=config.scopes,
        redirect_uri=callback_url(request),
        code_challenge_method="S256",
        token_endpoint_auth_method=auth_method if config.client_secret else "none",
        timeout=HTTP_TIMEOUT_SECONDS,
    )


def oidc_begin(request: HttpRequest, *, next_url: str) -> str:
    """Where to send the browser: the provider's authorization endpoint, with state, nonce and PKCE."""
    config = OidcConfig.from_settings(ConsoleSettings.load())
    document = discovery(config.issuer)
    state, nonce, verifier = generate_token(32), generate_token(32), generate_token(64)
    request.session[PENDING_SESSION_FIELD] = {
        "state": state,
        "nonce": nonce,
        "verifier": verifier,
        "next": next_url,
        "issuer": config.issuer,
        "started": int(time.time()),
    }
    with _client(config, document, request) as client:
        url, _ = client.create_authorization_url(
            document["authorization_endpoint"], state=state, code_verifier=verifier, nonce=nonce
        )
    return str(url)


def oidc_complete(request: HttpRequest) -> tuple[dict[str, Any], str, str]:
    """Check the provider's answer, exchange the code and validate the ID token.

    Returns the token's claims, the token itself (for sign-out at the provider) and where
    to go next. The pending state is used once, whatever happens.
    """
    pending = request.session.pop(PENDING_SESSION_FIELD, None)
    state = request.GET.get("state", "")
    if not pending or not state or not hmac.compare_digest(str(pending.get("state", "")), state):
        raise OidcError(BAD_TOKEN, "This sign-in was not started here, or it was already used. Try again.")
    if time.time() - int(pending.get("started", 0)) > PENDING_MAX_AGE_SECONDS:
        raise OidcError(BAD_TOKEN, "This sign-in took too long. Try again.")
    if request.GET.get("error"):
        description = request.GET.get("error_description") or request.GET["error"]
        raise OidcError(PROVIDER_ERROR, f"The identity provider refused the sign-in: {description[:200]}")
    code = request.GET.get("code", "")
    if not code:
        raise OidcError(BAD_TOKEN, "The identity provider sent no authorization code.")
    config = OidcConfig.from_settings(ConsoleSettings.load())
    if pending.get("issuer") != config.issuer:
        raise OidcError(BAD_TOKEN, "The identity provider changed during this sign-in. Try again.")
    document = discovery(config.issuer)
    try:
        with _client(config, document, request) as client:
            token = client.fetch_token(
                document["token_endpoint"],
                code=code,
                code_verifier=pending["verifier"],
                grant_type="authorization_code",
            )
    except Exception as exc:  # Authlib raises OAuthError, httpx errors, or ValueError for a bad body
        logger.warning("oidc token request failed", extra={"error": str(exc)[:300]})
        raise OidcError(BAD_TOKEN, "The identity provider did not accept the sign-in code.") from exc
    id_token = token.get("id_token")
    if not isinstance(id_token, str) or not id_token:
        raise OidcError(BAD_TOKEN, "The identity provider sent no ID token.")
    claims = id_token_claims(id_token, config=config, document=document, nonce=str(pending["nonce"]))
    return claims, id_token, str(pending.get("next") or "")


def id_token_claims(id_token: str, *, config: OidcConfig, document: dict[str, Any], nonce: str) -> dict[str, Any]:
    """The claims of a valid ID token: signed by the provider's keys, for this client, fresh, ours."""
    allowed = [a for a in document.get("id_token_signing_alg_values_supported") or ["RS256"] if a in ALGORITHMS]
    decoded = None
    for refresh in (False, True):  # a key the provider rotated in is fetched once more
        try:
            decoded = jwt.decode(id_token, provider_keys(document["jwks_uri"], refresh=refresh), algorithms=allowed)
            break
        except JoseError as exc:
            if refresh:
                raise OidcError(BAD_TOKEN, "The ID token's signature is not the provider's.") from exc
        except ValueError as exc:
            raise OidcError(BAD_TOKEN, "The ID token could not be read.") from exc
    assert decoded is not None
    claims = dict(decoded.claims)
    registry = jwt.JWTClaimsRegistry(
        leeway=CLOCK_LEEWAY_SECONDS,
        iss={"essential": True, "value": document["issuer"]},
        sub={"essential": True},
        exp={"essential": True},
        nonce={"essential": True, "value": nonce},
    )
    try:
        registry.validate(claims)
    except JoseError as exc:
        raise OidcError(BAD_TOKEN, f"The ID token is not valid ({exc.description or exc.error}).") from exc
    audiences = [claims["aud"]] if isinstance(claims.get("aud"), str) else list(claims.get("aud") or [])
    if config.client_id not in audiences:
        raise OidcError(BAD_TOKEN, "The ID token was issued for another application (its audience).")
    if len(audiences) > 1 and claims.get("azp") != config.client_id:
        raise OidcError(BAD_TOKEN, "The ID token was issued for another application (its authorized party).")
    return claims


def claimed_username(claims: dict[str, Any], claim: str) -> str:
    value = claims.get(claim)
    if not isinstance(value, str) or not value.strip():
        raise OidcError(BAD_TOKEN, f"The ID token has no {claim} claim; ask for the scope that carries it.")
    if claim == "email" and claims.get("email_verified") is False:
        raise OidcError(BAD_TOKEN, "The identity provider says this email address is not verified.")
    return value.strip()


def oidc_person(claims: dict[str, Any], *, request: HttpRequest | None = None) -> Person:
    """The person the claims name, if they may sign in; created only where the settings allow.

    Sign-in never changes a person: their attributes and roles come from SCIM, or from an admin.
    """
    current = ConsoleSettings.load()
    username = claimed_username(claims, current.oidc_username_claim)
    person = person_for_sign_in(username)
    if person is None:
        if current.scim_provisioning_enabled or not current.oidc_create_people:
            raise OidcError(
                UNKNOWN_PERSON,
                f"There is no one called {username} in this console. Ask an administrator to add you"
                + (
                    " (people come from the identity provider's SCIM provisioning)."
                    if current.scim_provisioning_enabled
                    else "."
                ),
            )
        person = _person_create_at_sign_in(username=username, claims=claims, current=current, request=request)
    if not person.is_active:
        raise OidcError(INACTIVE, "Your account in this console is inactive, so it cannot sign in.")
    if not person.has_console_permission(UI_PERMISSION):
        raise OidcError(
            NO_ROLE,
            "Your account has no console role, so it cannot sign in here. "
            "Ask an administrator to give you a role (for example viewer).",
        )
    return person


@transaction.atomic
def _person_create_at_sign_in(
    *, username: str, claims: dict[str, Any], current: ConsoleSettings, request: HttpRequest | None
) -> Person:
    email = (
        claims.get("email")
        if isinstance(claims.get("email"), str) and claims.get("email_verified") is not False
        else ""
    )
    fields = {
        "email": email or "",
        "given_name": str(claims.get("given_name") or "")[:150],
        "family_name": str(claims.get("family_name") or "")[:150],
        "source": Source.LOCAL,
    }
    roles = [current.oidc_default_role] if current.oidc_default_role is not None else []
    return person_create(actor=None, username=username, password=None, roles=roles, request=request, **fields)


def oidc_signed_in(request: HttpRequest, *, id_token: str) -> None:
    """Remember, in the (already rotated) session, how the person signed in: for sign-out at the provider."""
    request.session[METHOD_SESSION_FIELD] = "oidc"
    request.session[ID_TOKEN_SESSION_FIELD] = encrypt(id_token)


def provider_sign_out_url(request: HttpRequest) -> str | None:
    """Where to end the session at the provider too, if the person signed in there and it publishes how."""
    if request.session.get(METHOD_SESSION_FIELD) != "oidc":
        return None
    try:
        config = OidcConfig.from_settings(ConsoleSettings.load())
        endpoint = discovery(config.issuer).get("end_session_endpoint")
    except OidcError:
        return None
    if not endpoint or not issuer_allowed(str(endpoint)):
        return None
    query = {"client_id": config.client_id, "post_logout_redirect_uri": request.build_absolute_uri(reverse("login"))}
    sealed = request.session.get(ID_TOKEN_SESSION_FIELD)
    if sealed:
        query["id_token_hint"] = decrypt(sealed)
    separator = "&" if "?" in str(endpoint) else "?"
    return f"{endpoint}{separator}{urlencode(query)}"
