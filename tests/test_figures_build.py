"""Figures draw exactly what records hold and skip what has no records (the committed ones: test_figures_records)."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from matplotlib.container import ErrorbarContainer

from experiments.analysis import UpdateNormRecorder
from experiments.config import REPO_ROOT, Cell
from experiments.figures import quality, sweeps, update_norms
from experiments.figures.registry import FIGURES, build
from experiments.figures.sources import incomplete_rows
from experiments.figures.style import new_figure
from experiments.tables import Row, Seeds, Stat, Table
from tests.grid_helpers import fake_accuracy, fake_adapter_params, write_grid_records


def row(key: str, label: str, tag: str, values: list[float], adapter: int) -> Row:
    return Row(key, label, tag, params={"t": {"adapter": adapter, "trainable": adapter + 10}},
               metrics={"t/acc": Stat(values)}, seeds={"t": Seeds(ok=len(values), expected=3)})


def small_table() -> Table:
    rows = [row("head", "Head only", "head", [0.5, 0.6, 0.55], 0),
            row("lora_r2", "LoRA (r=2)", "lora_r2", [0.7, 0.72, 0.74], 100),
            row("lora_r8", "LoRA (r=8)", "lora_r8", [0.8, 0.82], 400),
            row("flora_r8", "FLoRA (r=8)", "flora_r8", [0.81], 420)]
    return Table("exp", "mini", "bb", "method", ["t"], None, ["t/acc"], rows, {}, None, [0, 1, 2])


def test_quality_panel_draws_only_record_values() -> None:
    fig, (ax,) = new_figure(1)
    quality.draw_panel(ax, "title", [small_table()])
    bars = {c.get_label(): c for c in ax.containers if isinstance(c, ErrorbarContainer)}
    lora_x, lora_y = bars["LoRA"].lines[0].get_data()
    assert list(lora_x) == [100, 400] and list(lora_y) == pytest.approx([72.0, 81.0])
    assert list(bars["FLoRA"].lines[0].get_data()[1]) == pytest.approx([81.0])
    head_line = next(line for line in ax.get_lines() if line.get_label() == "Head only")
    assert head_line.get_ydata()[0] == pytest.approx(55.0)
    assert incomplete_rows(small_table()) == ["LoRA (r=8) (2/3)", "FLoRA (r=8) (1/3)"]


def sweep_table(split_note: str) -> Table:
    rows = [Row(f"lora/{r}", f"LoRA (r={r})", f"lora_r{r}", value=str(r), params={"t": {"adapter": 50 * r}},
                metrics={"t/acc": Stat([0.7 + 0.01 * r])}, seeds={"t": Seeds(ok=1, expected=1)}) for r in (1, 4)]
    return Table("sweep", "mini", "bb", "method.rank", ["t"], split_note, ["t/acc"], rows, {}, None, [0])


@pytest.mark.parametrize("split_note", [None, "held-out images"])
def test_quality_panel_adds_rank_sweep_curves_and_stars_another_split(split_note: str | None) -> None:
    fig, (ax,) = new_figure(1)
    quality.draw_panel(ax, "title", [sweep_table(split_note), small_table()])
    star = " *" if split_note else ""
    curve = next(line for line in ax.get_lines() if line.get_label() == f"LoRA over rank (sweep){star}")
    assert list(curve.get_xdata()) == [50, 200] and list(curve.get_ydata()) == pytest.approx([71.0, 74.0])
    notes = [text.get_text() for text in ax.texts]
    assert notes == (["* sweep: held-out images"] if split_note else [])
    assert ax.get_ylabel() == "t/acc (×100)"


def test_rank_sweep_figure_draws_the_records_and_notes_a_method_without_any(tmp_path: Path) -> None:
    write_grid_records(tmp_path / "runs", skip=["dora"])
    spec = next(s for s in FIGURES if s.stem == "sweep_rank")
    drawn = []

    def keep(panels, out_dir, stem):
        drawn.extend(panels)
        return spec.draw(panels, out_dir, stem)

    extra = [f"paths.results_dir={tmp_path}", "table.rows=[2,16]"]
    outcome = build(replace(spec, draw=keep), extra, tmp_path / "figures")
    assert [p.name for p in outcome.paths] == ["sweep_rank.png", "sweep_rank.pdf"]
    assert any("no records for `experiment=sweep_rank method=dora`" in note for note in outcome.notes)
    assert sum("no records for `experiment=sweep_rank_effnet" in note for note in outcome.notes) == 3
    ((title, tables),) = drawn
    assert title.endswith("(sweep_rank)") and len(tables) == 2
    fig, (ax,) = new_figure(1)
    sweeps.draw_panel(ax, title, tables, "rank r")
    bars = {c.get_label(): c for c in ax.containers if isinstance(c, ErrorbarContainer)}
    assert set(bars) == {"FLoRA", "LoRA"}
    for name, method in (("FLoRA", "flora"), ("LoRA", "lora")):
        xs, ys = bars[name].lines[0].get_data()
        assert list(xs) == [2, 16] and list(ys) == pytest.approx([100 * fake_accuracy(method, r) for r in (2, 16)])
    by_params = sweeps.sweep_points(tables[0], by_params=True)
    assert by_params[0] == "FLoRA" and [x for x, _, _ in by_params[1]] == [fake_adapter_params("flora", r)
                                                                          for r in (2, 16)]


def test_figure4_series_from_recorder_output(tmp_path: Path) -> None:
    recorder = UpdateNormRecorder(every=1)
    recorder.steps, recorder.summary = [0, 5], {"total_norm": [0.0, 2.0], "mean_norm": [0.0, 1.0],
                                                 "mean_amplification": [0.0, 3.0]}
    records = [(Cell("flora_r8", "bbcnews", seed, []), {"label": "FLoRA (r=8)", "update_norms": recorder.series()})
               for seed in (0, 1)]
    records.append((Cell("head", "bbcnews", 0, []), {"label": "Head only"}))
    rows = update_norms.row_series(records)
    assert [(r.label, r.steps, r.seeds) for r in rows] == [("FLoRA (r=8)", [0, 5], 2)]
    paths = update_norms.draw([("t", [rows])], tmp_path, "fig4")
    assert [p.name for p in paths] == ["fig4.png", "fig4.pdf"] and all(p.stat().st_size > 0 for p in paths)


def test_a_figure_without_records_is_skipped_with_a_note(tmp_path: Path) -> None:
    spec = next(s for s in FIGURES if s.stem == "sweep_scale")
    outcome = build(spec, [f"paths.results_dir={tmp_path}"], tmp_path / "figures")
    assert outcome.paths == [] and not (tmp_path / "figures").exists()
    assert outcome.notes[-1] == "skipped: none of its records exist"
    assert sum("no records for `experiment=sweep_scale`" in n for n in outcome.notes) == 1


def test_unknown_figure_is_refused() -> None:
    done = subprocess.run([sys.executable, str(REPO_ROOT / "scripts/make_figures.py"), "--only", "nope"],
                          capture_output=True, text=True, cwd=REPO_ROOT)
    assert done.returncode == 1 and "no figure 'nope'" in done.stderr
