"""Compare a reproduction's records with the committed reference, row by row.

  python scripts/compare_runs.py experiment=table3_glue paths.results_dir=$PWD/reproduction

The overrides are those the reproduction ran with; the reference is the same table over results/runs (or
--reference DIR). Writes <results_dir>/<stem>_vs_reference.md and prints it. Exit 1 only when the reproduction
has no ok record (nothing to compare).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from experiments.atomic import atomic_write_text  # noqa: E402
from experiments.compare import render_comparison  # noqa: E402
from experiments.config import REPO_ROOT, compose_config  # noqa: E402
from experiments.tables import collect, table_stem  # noqa: E402


def main(argv: list[str]) -> int:
    reference_dir = REPO_ROOT / "results" / "runs"
    if "--reference" in argv:
        at = argv.index("--reference")
        reference_dir = Path(argv[at + 1]).resolve()
        argv = argv[:at] + argv[at + 2 :]
    cfg = compose_config(argv)
    ours = collect(argv)
    if not any(r.ok for r in ours.rows):
        print(f"error: no ok record in {cfg.paths.runs_dir} to compare", file=sys.stderr)
        return 1
    reference = collect([*argv, f"paths.runs_dir={reference_dir}"])
    report = render_comparison(ours, reference, str(cfg.paths.runs_dir), str(reference_dir))
    out = Path(cfg.paths.results_dir) / f"{table_stem(ours)}_vs_reference.md"
    atomic_write_text(out, report)
    print(report)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
