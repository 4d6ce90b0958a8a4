"""The integration's limits, with the reason each bound is there: one list that the form
(integrations/forms.py) and the API (integrations/api/serializers.py) both check against.

Kept out of the model's fields on purpose: validators there are part of the migration state,
and these bounds are the console's policy, free to move without a migration.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.core.validators import MaxValueValidator, MinValueValidator


@dataclass(frozen=True)
class Bound:
    """The range of one setting, and why values outside it make no sense."""

    least: float
    most: float
    too_small: str
    too_large: str

    def validators(self) -> list[MinValueValidator | MaxValueValidator]:
        # Django formats a validator's message with %: a literal one is doubled.
        return [
            MinValueValidator(self.least, message=self.too_small.replace("%", "%%")),
            MaxValueValidator(self.most, message=self.too_large.replace("%", "%%")),
        ]


LIMITS: dict[str, Bound] = {
    "timeout_seconds": Bound(
        1,
        300,
        "At least 1 second: with 0 the console would give up before the application could answer.",
        "At most 300 seconds (5 minutes): a longer wait holds a worker that other work needs.",
    ),
    "page_size": Bound(
        1,
        1000,
        "At least 1: a page of 0 accounts reads nothing, so extraction would never end.",
        "At most 1,000 a page: larger pages time out on most applications, which cap them anyway.",
    ),
    "rate_limit_per_second": Bound(
        0.01,
        1000,
        "At least 0.01 a second (one request every 100 seconds): at 0 no request would ever be sent.",
        "At most 1,000 requests a second: no SCIM application takes more.",
    ),
    "rate_limit_burst": Bound(
        1,
        10_000,
        "At least 1: a burst of 0 lets no request start.",
        "At most 10,000 requests at once.",
    ),
    "max_concurrency": Bound(
        1,
        64,
        "At least 1: with 0 requests at a time nothing would run.",
        "At most 64 requests at a time: more only draws 429s from the application.",
    ),
    "membership_chunk_size": Bound(
        1,
        10_000,
        "At least 1: 0 members per request would change no membership.",
        "At most 10,000 members per request: applications refuse larger PATCH bodies.",
    ),
    "mass_change_max_percent": Bound(
        0,
        100,
        "At least 0 %: a share cannot be negative.",
        "At most 100 %: a share of the integration's users.",
    ),
}
