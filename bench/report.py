"""Rows of figures and the one table `python -m bench` prints.

A row is one figure of one benchmark; when it has a baseline measured in the same run, the
table shows both and their ratio, which holds up on a noisy machine better than either figure.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Row:
    benchmark: str
    figure: str
    value: float
    unit: str = ""
    baseline: float | None = None
    target: str = ""
    met: bool | None = None
    note: str = ""

    @property
    def ratio(self) -> float | None:
        """jobrelay's figure over the baseline's; none when the baseline rounds to zero."""
        if self.baseline is None or abs(self.baseline) < 0.005:
            return None
        return self.value / self.baseline

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> Row:
        """Rows from modules that do not import this one (plain dicts with the same keys)."""
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        return cls(**known)


@dataclass
class Report:
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, rows: Iterable[Row | Mapping[str, Any]]) -> None:
        for row in rows:
            self.rows.append(row if isinstance(row, Row) else Row.from_mapping(row))

    @property
    def missed(self) -> list[Row]:
        return [row for row in self.rows if row.met is False]


def number(value: float | None, unit: str = "") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if unit == "%":
        return f"{value:.0f}%"
    magnitude = abs(value)
    if magnitude >= 1000:
        text = f"{value:,.0f}"
    elif magnitude >= 100:
        text = f"{value:.0f}"
    elif magnitude >= 10:
        text = f"{value:.1f}"
    else:
        text = f"{value:.2f}"
    return f"{text} {unit}".rstrip()


def render(report: Report) -> str:
    """A fixed-width table; also valid Markdown, so it can be pasted into docs/PERFORMANCE.md."""
    header = ["benchmark", "figure", "jobrelay", "baseline", "ratio", "target", "met"]
    lines: list[Sequence[str]] = [header]
    for row in report.rows:
        ratio = row.ratio
        lines.append(
            [
                row.benchmark,
                row.figure,
                number(row.value, row.unit),
                number(row.baseline, row.unit) if row.baseline is not None else "",
                f"{ratio * 100:.0f}%" if ratio is not None else "",
                row.target,
                {True: "yes", False: "NO", None: ""}[row.met],
            ]
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]

    def fmt(cells: Sequence[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    out = [fmt(lines[0]), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out.extend(fmt(line) for line in lines[1:])
    for row in report.rows:
        if row.note:
            out.append(f"- {row.benchmark} / {row.figure}: {row.note}")
    out.extend(f"- {note}" for note in report.notes)
    return "\n".join(out)
