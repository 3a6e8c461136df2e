"""Build results/<experiment>.{md,csv,tex} from the run records of an experiment's table (and refresh its
block in README.md and docs/*.md, where they have one).

  python scripts/make_tables.py experiment=table3_glue                 # mini profile
  python scripts/make_tables.py experiment=table3_glue profile=paper   # -> results/table3_glue_paper.*
  python scripts/make_tables.py experiment=table3_glue --allow-unreadable

Arguments are the same Hydra overrides the runs were launched with, so the table finds exactly those runs.
Nothing is written when the table has no ok record (an empty or missing runs folder), or when a record file is
unreadable (named in the error) unless --allow-unreadable publishes the rows without it, marked.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hydra.errors import HydraException  # noqa: E402

from experiments.config import REPO_ROOT, compose_config  # noqa: E402
from experiments.tables import collect, table_stem, update_documents, write_tables  # noqa: E402

ALLOW_UNREADABLE = "--allow-unreadable"


def main(argv: list[str]) -> int:
    """Collect, check, write, and print the markdown table; exit 1 (writing nothing) when it cannot stand."""
    allow_unreadable = ALLOW_UNREADABLE in argv
    overrides = [a for a in argv if a != ALLOW_UNREADABLE]
    try:
        cfg = compose_config(overrides)
        table = collect(overrides)
    except (HydraException, ValueError) as err:
        print(f"error: {str(err).splitlines()[0]}", file=sys.stderr)
        return 1
    runs_dir = Path(cfg.paths.runs_dir)
    if table.unreadable and not allow_unreadable:
        print(f"error: {len(table.unreadable)} unreadable run record(s); nothing was written:", file=sys.stderr)
        for problem in table.unreadable:
            print(f"  {problem}", file=sys.stderr)
        print(f"  fix or delete them (the runs then rerun), or pass {ALLOW_UNREADABLE}", file=sys.stderr)
        return 1
    if not any(r.ok for r in table.rows):
        print(
            f"error: no ok run record of {table.experiment} in {runs_dir}; nothing was written "
            f"(run the table's runs first, e.g. `python -m experiments.run -m {' '.join(overrides)}`)",
            file=sys.stderr,
        )
        return 1
    out_dir = Path(cfg.paths.results_dir)
    command = "python scripts/make_tables.py " + " ".join(argv)
    paths = write_tables(table, out_dir, command.strip())
    print(paths[0].read_text())
    print("wrote " + ", ".join(str(p) for p in paths))
    if out_dir == REPO_ROOT / "results":
        for document in update_documents(REPO_ROOT, table_stem(table), paths[0].read_text()):
            print(f"updated {document.relative_to(REPO_ROOT)}")
    missing = sum(r.expected - r.ok for r in table.rows)
    if missing:
        print(f"note: {missing} of {sum(r.expected for r in table.rows)} runs have no ok record yet")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
