"""Build results/<experiment>.{md,csv,tex} from the run records of an experiment's table (and refresh its
block in README.md, if the README has one).

  python scripts/make_tables.py experiment=table3_glue                 # mini profile
  python scripts/make_tables.py experiment=table3_glue profile=paper   # -> results/table3_glue_paper.*

Arguments are the same Hydra overrides the runs were launched with, so the table finds exactly those runs.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from experiments.config import REPO_ROOT, compose_config  # noqa: E402
from experiments.tables import collect, table_stem, update_readme, write_tables  # noqa: E402


def main(argv: list[str]) -> int:
    """Collect, write, and print the markdown table; exit 1 when no cell has a record yet."""
    table = collect(argv)
    out_dir = Path(compose_config(argv).paths.results_dir)
    command = "python scripts/make_tables.py " + " ".join(argv)
    paths = write_tables(table, out_dir, command.strip())
    print(paths[0].read_text())
    print("wrote " + ", ".join(str(p) for p in paths))
    if out_dir == REPO_ROOT / "results" and update_readme(
        REPO_ROOT / "README.md", table_stem(table), paths[0].read_text()
    ):
        print("updated README.md")
    missing = sum(r.expected - r.ok for r in table.rows)
    if missing:
        print(f"note: {missing} of {sum(r.expected for r in table.rows)} runs have no ok record yet")
    return 0 if any(r.ok for r in table.rows) else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
