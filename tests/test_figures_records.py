"""The committed run records feed every figure `make figures` draws, in full (every row, every seed)."""

from __future__ import annotations

import pytest

from experiments.figures.registry import FIGURES, input_problems

# Experiments whose records are not committed yet (`make sweep-rank`, `make sweep-rank-effnet`), and the figures
# that read them: every other source of those figures must still be complete. Strict: when an experiment's records
# land, it must leave this map.
RANK_SWEEPS = ("experiment=sweep_rank ", "experiment=sweep_rank_effnet ")
AWAITING_RECORDS = {"sweep_rank": RANK_SWEEPS, "quality_vs_params": RANK_SWEEPS}


@pytest.mark.parametrize("spec", FIGURES, ids=lambda s: s.stem)
def test_committed_records_feed_every_figure(spec) -> None:
    problems = input_problems(spec)
    awaited = AWAITING_RECORDS.get(spec.stem, ())
    assert not [p for p in problems if not p.startswith(tuple(f"`{a}" for a in awaited))], f"{spec.stem}: {problems}"
    for experiment in awaited:
        assert any(p.startswith(f"`{experiment}") for p in problems), (
            f"{spec.stem}: {experiment.strip()} has all its records now: drop it from AWAITING_RECORDS"
        )
