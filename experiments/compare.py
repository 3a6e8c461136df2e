"""A reproduction against the reference: the same table built from two runs folders, compared row by row.

Two means agree when they differ by at most two standard errors of the difference (sqrt(s1²/n1 + s2²/n2)), and
never less than FLOOR points, so that single-seed rows are not called different over rounding noise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from experiments.tables import Stat, Table

FLOOR = 0.005  # half a point, on the 0-1 scale the records keep


@dataclass(frozen=True)
class Comparison:
    """One (row, column) of the comparison."""

    row: str
    column: str
    ours: Stat
    reference: Stat

    @property
    def difference(self) -> float:
        return self.ours.mean - self.reference.mean

    @property
    def tolerance(self) -> float:
        se = math.sqrt(
            sum(s.std**2 / len(s.values) for s in (self.ours, self.reference) if len(s.values) > 1)
        )
        return max(2 * se, FLOOR)

    @property
    def verdict(self) -> str:
        if not self.ours.values or not self.reference.values:
            return "no data"
        return "agree" if abs(self.difference) <= self.tolerance else "differ"


def compare(ours: Table, reference: Table) -> list[Comparison]:
    """Every (row, metric column) present in either table, in the table's order."""
    refs = {r.key: r for r in reference.rows}
    out = []
    for row in ours.rows:
        ref = refs.get(row.key)
        for column in ours.columns:
            out.append(
                Comparison(row.label, column, row.metrics.get(column, Stat()),
                           ref.metrics.get(column, Stat()) if ref else Stat())
            )
    return out


def _cell(stat: Stat) -> str:
    if not stat.values:
        return "–"
    spread = f" ± {100 * stat.std:.2f}" if len(stat.values) > 1 else ""
    return f"{100 * stat.mean:.2f}{spread} (n={len(stat.values)})"


def render_comparison(ours: Table, reference: Table, ours_dir: str, reference_dir: str) -> str:
    """A markdown report: both means, the difference of means and of seed standard deviations, the verdict."""
    rows = compare(ours, reference)
    agree = sum(c.verdict == "agree" for c in rows)
    judged = sum(c.verdict != "no data" for c in rows)
    lines = [
        f"# {ours.experiment}: reproduction vs reference",
        "",
        f"Ours: records in `{ours_dir}`. Reference: the committed records in `{reference_dir}`. Metrics ×100.",
        f"Agree: |Δ mean| ≤ max(2 standard errors of the difference, {100 * FLOOR:.1f} points). "
        f"{agree} of {judged} cells agree.",
        "",
        "| Method | Metric | Ours | Reference | Δ mean | Δ std | Verdict |",
        "|---|---|---|---|---|---|---|",
    ]
    for c in rows:
        both = c.ours.values and c.reference.values
        delta = f"{100 * c.difference:+.2f}" if both else "–"
        dstd = f"{100 * (c.ours.std - c.reference.std):+.2f}" if both else "–"
        lines.append(f"| {c.row} | {c.column} | {_cell(c.ours)} | {_cell(c.reference)} | {delta} | {dstd} | "
                     f"{c.verdict} |")
    return "\n".join(lines) + "\n"
