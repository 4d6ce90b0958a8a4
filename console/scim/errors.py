"""SCIM errors (RFC 7644 §3.12) raised by the service provider and turned into responses."""

from __future__ import annotations


class ScimError(Exception):
    """An error to send back as ``urn:ietf:params:scim:api:messages:2.0:Error``."""

    def __init__(self, status: int, detail: str, scim_type: str | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.scim_type = scim_type


def invalid_filter(detail: str) -> ScimError:
    return ScimError(400, detail, "invalidFilter")


def invalid_value(detail: str) -> ScimError:
    return ScimError(400, detail, "invalidValue")


def invalid_path(detail: str) -> ScimError:
    return ScimError(400, detail, "invalidPath")


def invalid_syntax(detail: str) -> ScimError:
    return ScimError(400, detail, "invalidSyntax")


def not_found(detail: str = "Resource not found.") -> ScimError:
    return ScimError(404, detail)


def uniqueness(detail: str) -> ScimError:
    return ScimError(409, detail, "uniqueness")


def mutability(detail: str) -> ScimError:
    return ScimError(400, detail, "mutability")
