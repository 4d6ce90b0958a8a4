"""Printing: lines as the benchmark goes, each figure with its goal, and a closing summary."""

from __future__ import annotations

from dataclasses import dataclass, field


def fmt_int(value: int) -> str:
    return f"{value:,}"


def fmt_ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


@dataclass
class Figure:
    name: str
    value: str
    goal: str
    met: bool


@dataclass
class Report:
    figures: list[Figure] = field(default_factory=list)

    def section(self, title: str) -> None:
        print(f"\n== {title}", flush=True)

    def line(self, text: str) -> None:
        print(f"  {text}", flush=True)

    def figure(self, name: str, value: str, goal: str, met: bool) -> None:
        self.figures.append(Figure(name, value, goal, met))
        print(f"  * {name}: {value}  [goal {goal}: {'met' if met else 'NOT MET'}]", flush=True)

    def summary(self) -> int:
        self.section("Summary")
        width = max((len(f.name) for f in self.figures), default=0)
        for f in self.figures:
            print(f"  {'met    ' if f.met else 'NOT MET'}  {f.name:<{width}}  {f.value}  (goal {f.goal})")
        missed = sum(not f.met for f in self.figures)
        print(f"\n  {len(self.figures) - missed} of {len(self.figures)} goals met", flush=True)
        return missed
