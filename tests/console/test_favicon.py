"""The console's icon: linked from every page, and at /favicon.ico for whoever asks there."""

from __future__ import annotations

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db


def test_favicon_ico_leads_to_a_real_svg_icon_without_signing_in() -> None:
    client = Client()
    response = client.get("/favicon.ico")
    assert response.status_code == 302
    assert response["Location"].endswith(".svg")
    assert "max-age" in response["Cache-Control"]
    icon = client.get(response["Location"])
    assert icon.status_code == 200
    assert icon["Content-Type"].startswith("image/svg+xml")
    body = b"".join(icon.streaming_content) if icon.streaming else icon.content  # type: ignore[attr-defined]
    assert body.startswith(b"<svg")


def test_every_page_links_the_icon(admin_client: Client) -> None:
    for url in ("/", "/sign-in/"):
        page = (admin_client if url == "/" else Client()).get(url).content.decode()
        assert '<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">' in page
