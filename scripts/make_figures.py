"""Draw every figure from the committed run records into results/figures/ (PNG and PDF); nothing trains.

  python scripts/make_figures.py                                  # every figure
  python scripts/make_figures.py --only sweep_scale               # one figure, by file stem
  python scripts/make_figures.py paths.results_dir=/path/results  # records and figures of another results folder

Other arguments are Hydra overrides added to every figure's sources (as scripts/make_tables.py takes them).
A figure whose records are missing is skipped with a note; docs/figures.md says what each figure shows.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from experiments.config import compose_config  # noqa: E402
from experiments.figures.registry import FIGURES, build  # noqa: E402

ONLY = "--only"


def main(argv: list[str]) -> int:
    only = argv[argv.index(ONLY) + 1] if ONLY in argv else None
    overrides = [a for i, a in enumerate(argv) if a != ONLY and (i == 0 or argv[i - 1] != ONLY)]
    specs = [spec for spec in FIGURES if only in (None, spec.stem)]
    if not specs:
        print(f"error: no figure {only!r}; figures are {[spec.stem for spec in FIGURES]}", file=sys.stderr)
        return 1
    out_dir = Path(compose_config(overrides).paths.results_dir) / "figures"
    for spec in specs:
        start = time.perf_counter()
        outcome = build(spec, overrides, out_dir)
        for note in outcome.notes:
            print(f"note: {spec.stem}: {note}")
        if outcome.paths:
            names = ", ".join(str(p) for p in outcome.paths)
            print(f"wrote {names} ({time.perf_counter() - start:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
