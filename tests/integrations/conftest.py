"""Integrations are tested against the real SCIM server of ``tests.scim_peer``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from integrations.models import Integration
from tests.scim_peer import ACME, ENTERPRISE, PEER_TOKEN, Peer

__all__ = ["ACME", "ENTERPRISE", "PEER_TOKEN", "Peer"]


@pytest.fixture
def make_integration(db: None) -> Callable[..., Integration]:
    def make(url: str, **fields: Any) -> Integration:
        fields.setdefault("bearer_token", PEER_TOKEN)
        return Integration.objects.create(name=fields.pop("name", "App"), base_url=url, **fields)

    return make
