"""Charts: a few series over labels, drawn by Chart.js (from the npm registry) and always
shown as a table of the same numbers one click away (``templates/includes/chart.html``)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

# Colours that read on light and dark backgrounds, by what a series means.
COLOURS = {
    "good": "#2e7d32",
    "bad": "#c62828",
    "warn": "#ef6c00",
    "neutral": "#78909c",
    "info": "#1565c0",
    "extra": "#6a1b9a",
}


@dataclass
class Series:
    label: str
    values: list[float | int]
    colour: str = "info"

    def as_dict(self) -> dict[str, Any]:
        return {"label": self.label, "values": self.values, "colour": COLOURS.get(self.colour, self.colour)}


@dataclass
class Chart:
    """One chart: ``key`` names it in the page (unique there), ``kind`` is "bar" or "line"."""

    key: str
    title: str
    labels: list[str]
    series: list[Series]
    kind: str = "bar"
    stacked: bool = False
    unit: str = ""  # what the values count, for the axis and the table
    label_heading: str = ""  # the table's first column
    empty_text: str = "Nothing to show yet."
    notes: list[str] = field(default_factory=list)

    @property
    def data_id(self) -> str:
        """The id of the page element that holds the chart's data."""
        return f"chart-data-{self.key}"

    @property
    def empty(self) -> bool:
        return not self.labels or not any(any(v for v in s.values) for s in self.series)

    def data(self) -> dict[str, Any]:
        """What the page's script draws from."""
        return {
            "kind": self.kind,
            "stacked": self.stacked,
            "unit": self.unit,
            "labels": self.labels,
            "series": [s.as_dict() for s in self.series],
        }

    def rows(self) -> list[tuple[str, list[float | int]]]:
        """The table: one row per label, a value per series."""
        return [(label, [s.values[i] for s in self.series]) for i, label in enumerate(self.labels)]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def days_back(days: int, today: date) -> list[date]:
    """The last ``days`` days, oldest first, ending with ``today``."""
    return [today - timedelta(days=offset) for offset in range(days - 1, -1, -1)]


def day_label(day: date) -> str:
    return day.strftime("%d %b")


def as_date(value: date | datetime | str) -> date:
    """A day from what a database's date truncation answers (SQLite may answer text)."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])
