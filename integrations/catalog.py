"""The catalog of known applications: what an integration with each needs, before anyone types it.

*Add integration* starts from a template or from scratch. A template fills in the form: the
SCIM base URL as a pattern whose ``{placeholders}`` the form asks for (a directory id, a
tenant's name), the authentication, the endpoint paths and the limits its vendor documents
(page size, rate limit, members per request, whether a DELETE really deletes), and the
dialect profile the application is known to need (``integrations/dialect.py``), recorded
with the source ``catalog`` when the integration is made. Every value is what the vendor's
documentation or ``/work/shared/reference`` states; what neither states is left out
(``None``, "not documented") and the console's own default holds, to be corrected by a
probe or by what actions learn.

A rate limit documented without a burst gets a burst of one second's worth of requests.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

from integrations import dialect
from integrations.models import Integration

PLACEHOLDER = re.compile(r"\{([a-z_][a-z0-9_]*)\}")
# What a placeholder's value may hold: it lands in a host name or a path segment, so nothing
# that could end either (no "/", "@", "?", "#", ":").
PLACEHOLDER_VALUE = re.compile(r"^[A-Za-z0-9._~-]+$")
# ``?scratch=1`` on the add page, not a template's slug.
SCRATCH = "scratch"


class TemplateValuesError(ValueError):
    """Placeholders left without a (usable) value: ``errors`` maps each to what is wrong."""

    def __init__(self, errors: dict[str, list[str]]) -> None:
        super().__init__("; ".join(f"{key}: {' '.join(messages)}" for key, messages in errors.items()))
        self.errors = errors


@dataclass(frozen=True)
class Placeholder:
    key: str
    label: str
    help: str


@dataclass(frozen=True)
class Template:
    """One application of the catalog. ``None`` means the vendor does not document it."""

    slug: str
    name: str
    base_url: str  # with {placeholders}
    auth_type: str
    documentation: str  # the link's text
    documentation_url: str
    note: str
    placeholders: tuple[Placeholder, ...] = ()
    keywords: tuple[str, ...] = ()  # other names people search by (Jira, Confluence…)
    users_endpoint: str = "Users"
    groups_endpoint: str = "Groups"
    page_size: int | None = None
    rate_limit_per_second: float | None = None
    rate_limit_burst: int | None = None
    members_per_request: int | None = None
    supports_hard_delete: bool | None = None
    supports_groups: bool | None = None
    # capability -> value, as dialect.CAPABILITIES spells them; and why, per capability.
    dialect: dict[str, Any] = field(default_factory=dict)
    dialect_notes: dict[str, str] = field(default_factory=dict)

    @property
    def placeholder_keys(self) -> list[str]:
        return PLACEHOLDER.findall(self.base_url)

    def field_values(self) -> dict[str, Any]:
        """The integration's fields as the template sets them (the form's initial values)."""
        values: dict[str, Any] = {
            "name": self.name,
            "base_url": self.base_url,
            "auth_type": self.auth_type,
            "users_endpoint": self.users_endpoint,
            "groups_endpoint": self.groups_endpoint,
        }
        if self.page_size is not None:
            values["page_size"] = self.page_size
        if self.rate_limit_per_second is not None:
            values["rate_limit_per_second"] = self.rate_limit_per_second
            values["rate_limit_burst"] = self.rate_limit_burst or max(1, math.ceil(self.rate_limit_per_second))
        if self.members_per_request is not None:
            values["membership_chunk_size"] = self.members_per_request
        if self.supports_hard_delete is not None:
            values["supports_hard_delete"] = self.supports_hard_delete
        return values

    def limits(self) -> list[str]:
        """What the template knows of the application's limits, in words (the catalog's cards)."""
        said = []
        if self.rate_limit_per_second is not None:
            burst = f", burst {self.rate_limit_burst}" if self.rate_limit_burst else ""
            said.append(f"{per_second(self.rate_limit_per_second)} requests/s{burst}")
        else:
            said.append("rate limit not documented")
        if self.page_size is not None:
            said.append(f"{self.page_size} a page")
        if self.members_per_request is not None:
            said.append(f"{self.members_per_request} members a request")
        if self.supports_hard_delete is True:
            said.append("DELETE deletes")
        elif self.supports_hard_delete is False:
            said.append("deactivates, no hard delete")
        if self.supports_groups is False:
            said.append("users only (no groups)")
        elif self.supports_groups:
            said.append("users and groups")
        return said

    def as_dict(self) -> dict[str, Any]:
        """The API's shape of the template."""
        return {
            "slug": self.slug,
            "name": self.name,
            "base_url": self.base_url,
            "placeholders": [{"key": p.key, "label": p.label, "help": p.help} for p in self.placeholders],
            "auth_type": self.auth_type,
            "users_endpoint": self.users_endpoint,
            "groups_endpoint": self.groups_endpoint,
            "page_size": self.page_size,
            "rate_limit_per_second": self.rate_limit_per_second,
            "rate_limit_burst": self.rate_limit_burst,
            "members_per_request": self.members_per_request,
            "supports_hard_delete": self.supports_hard_delete,
            "supports_groups": self.supports_groups,
            "dialect": dict(self.dialect),
            "note": self.note,
            "documentation": self.documentation,
            "documentation_url": self.documentation_url,
            "keywords": list(self.keywords),
        }

    def matches(self, query: str) -> bool:
        words = query.lower().split()
        text = " ".join([self.name, self.slug, *self.keywords]).lower()
        return all(word in text for word in words)


def per_second(value: float) -> str:
    """A rate as people write it: 10, 2.5, 0.625, 0.05."""
    return f"{value:.0f}" if value >= 100 else f"{value:.3g}"


def _placeholder(key: str, label: str, help_text: str) -> Placeholder:
    return Placeholder(key, label, help_text)


BEARER = Integration.AuthType.BEARER.value

TEMPLATES: tuple[Template, ...] = (
    Template(
        slug="atlassian-cloud",
        name="Atlassian Cloud",
        keywords=("Jira", "Confluence", "Bitbucket", "Atlassian Access", "Atlassian Guard"),
        base_url="https://api.atlassian.com/scim/directory/{directory_id}",
        placeholders=(
            _placeholder(
                "directory_id",
                "Directory ID",
                "What follows /scim/directory/ in the directory base URL that admin.atlassian.com shows with "
                "the API key (Security > Identity providers > your directory > User provisioning).",
            ),
        ),
        auth_type=BEARER,
        supports_hard_delete=False,
        supports_groups=True,
        dialect={"filter": True, "filter_or": False, "hard_delete": False},
        dialect_notes={
            "filter": "Atlassian: users are filtered by one exact match (eq) on userName or externalId.",
            "filter_or": "Atlassian: only a single eq is supported, so accounts are looked up one at a time.",
            "hard_delete": "Atlassian: DELETE deactivates the account instead of deleting it.",
        },
        note=(
            "Jira, Confluence and Bitbucket Cloud users come from the organization's directory. The key is "
            "the directory's API key (not a Cloud admin API key); an account can only be created with an "
            "email address on a verified domain; DELETE only deactivates. The reference material gives "
            "https://{domain}.atlassian.net/scim/directory/{directory-id}; Atlassian's own documentation "
            "gives the api.atlassian.com address used here. Rate limit: not documented."
        ),
        documentation="Atlassian: About the user provisioning REST API",
        documentation_url="https://developer.atlassian.com/cloud/admin/user-provisioning/rest/intro/",
    ),
    Template(
        slug="slack",
        name="Slack",
        keywords=("Enterprise Grid", "Business+"),
        base_url="https://api.slack.com/scim/v2",
        auth_type=BEARER,
        # Creating or updating a user: 180 a minute, bursts of 20 (the per-endpoint write limit).
        rate_limit_per_second=3,
        rate_limit_burst=20,
        supports_hard_delete=False,
        supports_groups=True,
        dialect={"hard_delete": False},
        dialect_notes={"hard_delete": "Slack: a user is deactivated, not deleted (no hard delete)."},
        note=(
            "Business+ and Enterprise Grid plans; an OAuth token with the admin scope from an Owner or Admin. "
            "Slack's limits hold for every SCIM app of the organization together: writes 600 a minute "
            "(bursts of 180), reads 1,000 a minute, and per endpoint 180 a minute to create or update a user "
            "(bursts of 20) or to update a group (bursts of 80). The template takes the per-endpoint write "
            "limit, 3 requests/s."
        ),
        documentation="Slack: SCIM API rate limits",
        documentation_url="https://docs.slack.dev/reference/scim-api/rate-limits",
    ),
    Template(
        slug="github-emu",
        name="GitHub Enterprise Managed Users",
        keywords=("GitHub", "EMU", "Enterprise Cloud"),
        base_url="https://api.github.com/scim/v2/enterprises/{enterprise}",
        placeholders=(
            _placeholder("enterprise", "Enterprise slug", "The enterprise's name in github.com/enterprises/<slug>."),
        ),
        auth_type=BEARER,
        supports_hard_delete=True,
        supports_groups=True,
        dialect={"patch_filter_path_remove": False, "hard_delete": True},
        dialect_notes={
            "patch_filter_path_remove": "GitHub: SCIM path selectors that include filters are not supported.",
            "hard_delete": "GitHub: DELETE removes the managed user permanently (irreversible).",
        },
        note=(
            "For enterprises with managed users only (organizations use another API). The token is a "
            "personal access token (classic) of the setup user with the scim:enterprise scope. Groups "
            "become teams' identity-provider groups. DELETE is permanent: prefer Deprovision. Rate limit: "
            "not documented for SCIM."
        ),
        documentation="GitHub: REST API endpoints for SCIM (Enterprise Managed Users)",
        documentation_url="https://docs.github.com/en/enterprise-cloud@latest/rest/enterprise-admin/scim",
    ),
    Template(
        slug="zoom",
        name="Zoom",
        base_url="https://api.zoom.us/scim2",
        auth_type=BEARER,
        rate_limit_per_second=1,  # "each SCIM2 API endpoint has a rate limit of 1 request/second per account"
        supports_hard_delete=True,
        supports_groups=True,
        note=(
            "Business or Education accounts with an approved vanity URL and single sign-on. The token is "
            "an OAuth access token of a Zoom app (or server-to-server app) with the SCIM2 scope; such "
            "tokens expire, so the stored one needs renewing. Zoom's SCIM2 reference gives 1 request a "
            "second per endpoint and account (newer pages name a rate-limit label); the burst is not documented."
        ),
        documentation="Zoom: SCIM2 API",
        documentation_url="https://developers.zoom.us/docs/api/scim2/",
    ),
    Template(
        slug="egnyte",
        name="Egnyte",
        base_url="https://{domain}.egnyte.com/pubapi/scim/v2",
        placeholders=(_placeholder("domain", "Egnyte domain", "acme in acme.egnyte.com."),),
        auth_type=BEARER,
        supports_groups=True,
        note=(
            "The token is generated for the domain by a domain administrator (a service account is "
            "recommended). EgnyteGov domains live under egnytegov.com: change the address. Rate limit and "
            "hard delete: not documented."
        ),
        documentation="Egnyte: Okta SCIM configuration guide",
        documentation_url="https://helpdesk.egnyte.com/hc/en-us/articles/360029231571-Okta-SCIM-Configuration-Guide",
    ),
    Template(
        slug="sigma-computing",
        name="Sigma Computing",
        keywords=("Sigma",),
        base_url="https://aws-api.sigmacomputing.com/scim/v2",
        auth_type=BEARER,
        supports_groups=True,
        note=(
            "Groups are Sigma teams. The organization must sign in with SAML (not password). The address "
            "is that of organizations hosted on AWS; one hosted elsewhere has another API host: change "
            "it. Rate limit and hard delete: not documented."
        ),
        documentation="Sigma: Manage users and teams with SCIM",
        documentation_url="https://help.sigmacomputing.com/docs/manage-users-and-teams-with-scim",
    ),
    Template(
        slug="fivetran",
        name="Fivetran",
        base_url="https://api.fivetran.com/scim/v2",
        auth_type=BEARER,
        supports_groups=True,
        note=(
            "A user's email and userName must match. Team roles cannot be set through SCIM, and once SCIM "
            "is on, users are managed through it rather than in Fivetran. Rate limit and hard delete: not "
            "documented."
        ),
        documentation="Fivetran: SCIM",
        documentation_url="https://fivetran.com/docs/using-fivetran/fivetran-dashboard/account-settings/scim",
    ),
    Template(
        slug="harness",
        name="Harness",
        base_url="https://app.harness.io/gateway/ng/api/scim/account/{account_id}",
        placeholders=(
            _placeholder("account_id", "Account ID", "Harness's account identifier (Account Settings > Overview)."),
        ),
        auth_type=BEARER,
        supports_groups=True,
        note=(
            "The token is a Harness API key's token with every permission on users and user groups. Groups "
            "become Harness user groups, which can no longer be changed in Harness itself. Rate limit and "
            "hard delete: not documented."
        ),
        documentation="Harness: Provision users and groups with Okta (SCIM)",
        documentation_url="https://developer.harness.io/docs/platform/user-management/provision-users-with-okta-scim/",
    ),
    Template(
        slug="zapier",
        name="Zapier",
        base_url="https://zapier.com/scim/v2",
        auth_type=BEARER,
        supports_groups=True,
        dialect={"filter": True, "count": True},
        dialect_notes={
            "filter": "Zapier: the users list takes a filter parameter (a subset of SCIM's filters).",
            "count": "Zapier: startIndex and count choose the page (fifty users by default).",
        },
        note=(
            "Enterprise plan, with the token from the user provisioning settings. userName must be an email "
            "address; groups are Teams workspaces. Rate limit and hard delete: not documented."
        ),
        documentation="Zapier: Provision user accounts with SCIM",
        documentation_url="https://help.zapier.com/hc/en-us/articles/8496291497741-Provision-user-accounts-with-SCIM",
    ),
    Template(
        slug="twingate",
        name="Twingate",
        base_url="https://{network}.twingate.com/api/scim/v2",
        placeholders=(_placeholder("network", "Network name", "autoco in autoco.twingate.com."),),
        auth_type=BEARER,
        supports_hard_delete=True,
        supports_groups=True,
        dialect={"hard_delete": True, "count": True},
        dialect_notes={
            "hard_delete": "Twingate: DELETE /Users/{id} deletes the user in Twingate.",
            "count": "Twingate: the users list is paginated (GET /Users?count=100).",
        },
        note=(
            "A long-lived token from the Admin console; only the most recently generated one is valid. "
            "Twingate keeps one email per user (the primary or work one), and says its SCIM endpoints serve "
            "its supported identity-provider integrations. Rate limit: not documented."
        ),
        documentation="Twingate: SCIM provisioning API",
        documentation_url="https://www.twingate.com/docs/scim-provisioning-api",
    ),
    Template(
        slug="thousandeyes",
        name="ThousandEyes",
        keywords=("Cisco",),
        base_url="https://api.thousandeyes.com/scim/v2",
        auth_type=BEARER,
        supports_hard_delete=True,
        supports_groups=False,
        dialect={"groups": False, "hard_delete": True},
        dialect_notes={
            "groups": "ThousandEyes: SCIM adds, updates and deletes users; groups are not provisioned through it.",
            "hard_delete": "ThousandEyes: SCIM deletes users.",
        },
        note=(
            "Users only: roles and account groups are set in ThousandEyes (new users get the default role "
            "of the SCIM settings). The caller needs View Users, Edit Users and API Access. An OAuth bearer "
            "token or, with basic authentication, the basic authentication token. https://api.thousandeyes"
            ".com/scim (the reference's address) is the same SCIM 2.0 endpoint. Rate limit: not documented."
        ),
        documentation="ThousandEyes: support for SCIM",
        documentation_url="https://docs.thousandeyes.com/product-documentation/user-management/rbac/thousandeyes-support-for-scim",
    ),
    Template(
        slug="salesforce",
        name="Salesforce",
        base_url="https://{my_domain}.my.salesforce.com/services/scim/v2",
        placeholders=(
            _placeholder("my_domain", "My Domain name", "acme in acme.my.salesforce.com (Setup > My Domain)."),
        ),
        auth_type=BEARER,
        supports_hard_delete=False,
        supports_groups=True,
        dialect={"hard_delete": False},
        dialect_notes={"hard_delete": "Salesforce: users are deactivated, never deleted."},
        note=(
            "The token is an OAuth 2.0 access token (they expire: renew the stored one). Users are "
            "deactivated rather than deleted; profiles and permission sets are entitlements, not groups. "
            "Rate limit: the org's API limits, not documented for SCIM."
        ),
        documentation="Salesforce: Manage Salesforce user identities with SCIM",
        documentation_url="https://help.salesforce.com/s/articleView?id=xcloud.identity_scim_overview.htm",
    ),
    Template(
        slug="aws-iam-identity-center",
        name="AWS IAM Identity Center",
        keywords=("AWS", "Amazon", "SSO"),
        base_url="https://scim.{region}.amazonaws.com/{tenant_id}/scim/v2",
        placeholders=(
            _placeholder("region", "AWS region", "us-east-1, for example."),
            _placeholder(
                "tenant_id", "Tenant ID", "From the SCIM endpoint shown in Settings > Automatic provisioning."
            ),
        ),
        auth_type=BEARER,
        page_size=100,
        members_per_request=100,
        supports_hard_delete=True,
        supports_groups=True,
        dialect={"filter": True, "filter_or": False, "hard_delete": True},
        dialect_notes={
            "filter": "AWS: filters on userName or externalId with eq.",
            "filter_or": "AWS: only eq joined with and is supported.",
            "hard_delete": "AWS: DeleteUser is supported.",
        },
        note=(
            "The token is the access token made when automatic provisioning is enabled. At most 100 "
            "results a page and 100 members a request; lists page by cursor, not startIndex, so a directory "
            "of more than one page is not read whole (the extraction stops with a clear error); users hold "
            "one email. Rate limit: not documented."
        ),
        documentation="AWS: IAM Identity Center SCIM implementation, limitations",
        documentation_url="https://docs.aws.amazon.com/singlesignon/latest/developerguide/limitations.html",
    ),
)

_BY_SLUG = {template.slug: template for template in TEMPLATES}


def templates(query: str = "") -> list[Template]:
    """The catalog, by name; with ``query``, those whose name, slug or other names hold every word."""
    found = [t for t in TEMPLATES if t.matches(query)] if query.strip() else list(TEMPLATES)
    return sorted(found, key=lambda t: t.name.lower())


def get(slug: str) -> Template | None:
    return _BY_SLUG.get(slug)


def fill(pattern: str, values: dict[str, Any], *, template: Template | None = None) -> str:
    """``pattern`` with each ``{placeholder}`` replaced by its value; raises TemplateValuesError."""
    labels = {p.key: p.label for p in template.placeholders} if template else {}
    errors: dict[str, list[str]] = {}
    filled = pattern
    for key in dict.fromkeys(PLACEHOLDER.findall(pattern)):
        value = str(values.get(key) or "").strip()
        what = labels.get(key, key)
        if not value:
            errors[key] = [f"Fill in {{{key}}} ({what}): the base URL needs it."]
        elif not PLACEHOLDER_VALUE.match(value):
            errors[key] = [f"{what}: only letters, digits and . _ ~ - (it goes into the URL as it is)."]
        else:
            filled = filled.replace(f"{{{key}}}", value)
    if errors:
        raise TemplateValuesError(errors)
    return filled


def template_apply(*, integration: Integration, template: Template) -> None:
    """Record that ``integration`` started from ``template`` and give it the template's dialect profile."""
    Integration.objects.filter(pk=integration.pk).update(catalog_template=template.slug)
    integration.catalog_template = template.slug
    if template.dialect:
        dialect.learn_many(integration, dict(template.dialect), source="catalog", notes=dict(template.dialect_notes))
