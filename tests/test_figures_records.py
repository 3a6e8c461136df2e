"""The committed run records feed every figure `make figures` draws, in full (every row, every seed)."""

from __future__ import annotations

import pytest

from experiments.figures.registry import FIGURES, input_problems


@pytest.mark.parametrize("spec", FIGURES, ids=lambda s: s.stem)
def test_committed_records_feed_every_figure(spec) -> None:
    assert input_problems(spec) == [], spec.stem
