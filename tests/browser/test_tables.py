"""In a real browser: sort and page a 1,000-row table, change its page size, choose its columns."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from console.accounts.models import Person
from integrations.models import ExtensionAttribute, Integration, TargetUser
from tests.conftest import PASSWORD

pytestmark = pytest.mark.browser

ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"


def settled(page: Page) -> None:
    """Wait until htmx has settled what it swapped in: a control it just inserted reacts only
    once htmx has processed it (a person is never that quick; a test is)."""
    page.wait_for_function(
        "() => !document.querySelector('.htmx-request, .htmx-swapping, .htmx-settling, .htmx-added')"
    )


def row_ids(page: Page) -> list[str]:
    return page.locator("#table-region tbody tr[data-id]").evaluate_all("rows => rows.map(r => r.dataset.id)")


def test_an_admin_sorts_pages_and_chooses_the_columns_of_a_thousand_accounts(
    page: Page, live_server: Any, make_person: Callable[..., Person]
) -> None:
    app = Integration.objects.create(name="Big app", base_url="https://big.example.com/scim/v2", bearer_token="t")
    TargetUser.objects.bulk_create(
        TargetUser(
            integration=app,
            remote_id=f"r{n}",
            user_name=f"user{n:04}",
            display_name=f"person {n % 97:02}",
            email=f"mail{(n * 7) % 1000:04}@example.com",
            content_hash="h",
            resource={ENTERPRISE: {"department": f"dept{n % 5}"}},
            department=f"dept{n % 5}",  # as extraction keeps it beside the resource
        )
        for n in range(1000)
    )
    make_person("table-admin", roles=["admin"])
    page.goto(f"{live_server.url}/sign-in/")
    page.get_by_label("User name").fill("table-admin")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.goto(f"{live_server.url}/integrations/{app.pk}/users/")

    region = page.locator("#table-region")
    expect(region.get_by_text("more than", exact=False)).to_have_count(0)
    expect(region.locator(".table-total strong")).to_have_text("1,000")
    expect(region.locator("tbody tr")).to_have_count(25)
    expect(region.locator("tbody tr").first).to_contain_text("user0000")

    # Sort by email: ascending, then descending, each with its arrow.
    settled(page)
    region.get_by_role("link", name="Email").click()
    expect(page.locator('th[data-column="email"]')).to_have_attribute("aria-sort", "ascending")
    expect(region.locator("tbody tr").first).to_contain_text("mail0000@example.com")
    settled(page)
    region.get_by_role("link", name="Email").click()
    expect(page.locator('th[data-column="email"]')).to_have_attribute("aria-sort", "descending")
    expect(page.locator('th[data-column="email"]')).to_contain_text("↓")
    expect(region.locator("tbody tr").first).to_contain_text("mail0999@example.com")
    assert "ordering=-email" in page.url

    # 200 a page: five pages, every account once, in order; the sort stays on every page.
    settled(page)
    region.get_by_label("Rows per page").select_option("200")
    expect(region.locator("tbody tr")).to_have_count(200)
    seen: list[str] = []
    for number in range(5):
        expect(region.locator("tbody tr")).to_have_count(200)
        seen += row_ids(page)
        if number < 4:
            settled(page)
            region.get_by_role("link", name="Next →").click()
            expect(region.locator("tbody tr").first).not_to_have_attribute("data-id", seen[-200])
    expect(region.get_by_role("link", name="Next →")).to_have_count(0)
    assert len(seen) == 1000
    assert len(set(seen)) == 1000
    assert "page_size=200" in page.url
    assert "ordering=-email" in page.url
    expect(region.locator("tbody tr").last).to_contain_text("mail0000@example.com")
    settled(page)
    region.get_by_role("link", name="← Previous").click()
    expect(region.locator("tbody tr").first).to_have_attribute("data-id", seen[600])

    # A filter keeps the sort and the page size.
    settled(page)
    page.locator("#table-filters").get_by_label("Search").fill("user09")
    with page.expect_response(lambda response: "/users/" in response.url):
        page.locator("#table-filters").get_by_label("Search").press("Tab")  # leaving the field applies the filters too
    expect(region.locator(".table-total strong")).to_have_text("100")
    expect(page.locator('th[data-column="email"]')).to_have_attribute("aria-sort", "descending")
    emails = region.locator("tbody td:nth-child(3)").all_inner_texts()
    assert emails == sorted(emails, reverse=True)

    # Choose the columns: department in, email out; kept when the page is opened again.
    settled(page)
    page.get_by_text("Columns", exact=True).click()
    page.get_by_label("Department").check()
    page.get_by_label("Email", exact=True).uncheck()
    page.get_by_role("button", name="Show these columns").click()
    expect(page.locator('th[data-column="department"]')).to_be_visible()
    expect(page.locator('th[data-column="email"]')).to_have_count(0)
    page.goto(f"{live_server.url}/integrations/{app.pk}/users/")
    expect(page.locator('th[data-column="department"]')).to_be_visible()
    expect(page.locator('th[data-column="email"]')).to_have_count(0)
    expect(region.locator("tbody tr").first).to_contain_text("dept")


def test_long_values_wrap_in_their_column_and_extension_attributes_read_as_json(
    page: Page, live_server: Any, make_person: Callable[..., Person]
) -> None:
    acme = "urn:acme:params:scim:schemas:extension:acme:1.0:User"
    app = Integration.objects.create(name="Wide app", base_url="https://wide.example.com/scim/v2", bearer_token="t")
    ExtensionAttribute.objects.create(
        integration=app, normalized_name="acme_badges", scim_path=f"{acme}:badges", schema_urn=acme, multi_valued=True
    )
    ExtensionAttribute.objects.create(
        integration=app, normalized_name="acme_costcenter", scim_path=f"{acme}:costCenter", schema_urn=acme
    )
    TargetUser.objects.create(
        integration=app,
        remote_id="r1",
        user_name="ada@example.com",
        display_name="Ada " + "Lovelace" * 31,  # one word of 248 letters, within the column's 255
        content_hash="h",
        resource={acme: {"badges": ["front", "lab"], "costCenter": "CC-" + "x" * 300}},
    )
    make_person("table-admin", roles=["admin"])
    page.goto(f"{live_server.url}/sign-in/")
    page.get_by_label("User name").fill("table-admin")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.goto(f"{live_server.url}/integrations/{app.pk}/users/")
    page.get_by_text("Columns", exact=True).click()
    page.get_by_label("badges").check()
    page.get_by_label("costCenter").check()
    page.get_by_role("button", name="Show these columns").click()

    # The short name heads the column, the full URN on hover.
    expect(page.locator('th[data-column="ext.acme_badges"]')).to_have_text("badges")
    expect(page.locator('th[data-column="ext.acme_badges"]')).to_have_attribute("title", f"{acme}:badges")
    row = page.locator("#table-region tbody tr").first
    # A list reads as JSON, never as the text of a Python list.
    expect(row).to_contain_text('["front", "lab"]')
    expect(row).not_to_contain_text("['front', 'lab']")
    # The long values wrap inside a column of at most 30rem (480 px) and its padding; the user
    # name beside them keeps its line.
    widths = row.locator("td").evaluate_all("cells => cells.map(c => c.getBoundingClientRect().width)")
    assert max(widths) <= 480 + 20, widths
    user_name = row.get_by_role("link", name="ada@example.com")
    assert user_name.evaluate("a => a.getClientRects().length") == 1  # one line box: not broken


def test_the_persons_accounts_and_an_integrations_mappings_sort_in_place(
    page: Page, live_server: Any, make_person: Callable[..., Person]
) -> None:
    from console.accounts.models import Team
    from lifecycle.models import BirthrightMapping, MappingState

    owner = make_person("owner", roles=[])
    apps = [
        Integration.objects.create(name=name, base_url=f"https://{name}.example.com/scim/v2", bearer_token="t")
        for name in ("Beta", "Alpha")
    ]
    for n, name in enumerate(("carol", "alice", "bert")):
        TargetUser.objects.create(
            integration=apps[n % 2], remote_id=f"r{n}", user_name=name, content_hash="h", owner=owner
        )
    for name, state in (("Sales", MappingState.PENDING), ("Eng", MappingState.ACTIVE)):
        BirthrightMapping.objects.create(integration=apps[0], team=Team.objects.create(name=name), state=state)
    make_person("table-admin", roles=["admin"])
    page.goto(f"{live_server.url}/sign-in/")
    page.get_by_label("User name").fill("table-admin")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()

    page.goto(f"{live_server.url}/people/{owner.pk}/")
    region = page.locator("#table-region")
    expect(region.locator(".table-total strong")).to_have_text("3")
    cells = region.locator('tbody td:nth-child(2) a[href*="/users/"]')
    expect(cells).to_have_text(["alice", "carol", "bert"])  # by application (Alpha, Beta), then as added
    settled(page)
    region.get_by_role("link", name="Account").click()
    expect(page.locator('th[data-column="user_name"]')).to_have_attribute("aria-sort", "ascending")
    settled(page)
    region.get_by_role("link", name="Account").click()
    expect(cells).to_have_text(["carol", "bert", "alice"])
    assert "ordering=-user_name" in page.url
    expect(page.get_by_role("heading", name="Profile")).to_be_visible()  # only the table was swapped
    expect(region.get_by_role("link", name="CSV")).to_have_attribute("href", "?ordering=-user_name&as=csv")

    page.goto(f"{live_server.url}/integrations/{apps[0].pk}/lifecycle/")
    region = page.locator("#table-region")
    who = region.locator("tbody td:first-child")
    expect(who).to_have_text(["Team Sales", "Team Eng"])  # in the order they were made
    settled(page)
    region.get_by_role("link", name="Who").click()
    expect(who).to_have_text(["Team Eng", "Team Sales"])
    settled(page)
    region.get_by_role("link", name="State").click()
    expect(page.locator('th[data-column="state"]')).to_have_attribute("aria-sort", "ascending")
    expect(region.locator("tbody tr").first).to_contain_text("In effect")
    expect(page.get_by_role("heading", name="Add a mapping")).to_be_visible()
