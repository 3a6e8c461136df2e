"""Holding part of a training set out for model selection (the GLUE trials): the carved part is disjoint from what
the trials train on, stratified, the same on every call, and the splits a table reports are never touched."""

from __future__ import annotations

import datasets
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from omegaconf import OmegaConf

from experiments.language import data
from experiments.language.data import hold_out, load_raw, tokenize

HOLDOUT = OmegaConf.create({"split": "train_holdout", "size": 0.1, "seed": 0})


def glue_like(labels: list[int], n_classes: int = 2) -> datasets.DatasetDict:
    """A GLUE-shaped task: train and a dev split, a ClassLabel column and unique sentences."""
    features = datasets.Features({"sentence": datasets.Value("string"),
                                  "label": datasets.ClassLabel(num_classes=n_classes)})

    def make(prefix: str, ys: list[int]) -> datasets.Dataset:
        return datasets.Dataset.from_dict({"sentence": [f"{prefix} {i}" for i in range(len(ys))], "label": ys},
                                          features=features)

    return datasets.DatasetDict(train=make("train", labels), validation=make("dev", labels[:20]))


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(0, 2), min_size=60, max_size=300), st.integers(0, 3))
def test_the_held_out_part_and_the_rest_partition_train_with_each_class_in_proportion(labels: list[int],
                                                                                        seed: int) -> None:
    labels = sorted(labels)  # GLUE files may be ordered; the carve must not take a contiguous block
    if min(labels.count(c) for c in set(labels)) < 2:
        labels = labels + labels
    raw = glue_like(labels, n_classes=3)
    split = hold_out(raw, OmegaConf.merge(HOLDOUT, {"seed": seed}))
    train, held = list(split["train"]["sentence"]), list(split["train_holdout"]["sentence"])
    assert not set(train) & set(held) and sorted(train + held) == sorted(raw["train"]["sentence"])
    assert len(held) == pytest.approx(0.1 * len(labels), abs=1)
    for c in set(labels):
        share = labels.count(c) / len(labels)
        assert list(split["train_holdout"]["label"]).count(c) == pytest.approx(share * len(held), abs=1.5)
    assert list(split["validation"]["sentence"]) == list(raw["validation"]["sentence"])
    assert list(hold_out(raw, OmegaConf.merge(HOLDOUT, {"seed": seed}))["train_holdout"]["sentence"]) == held


def test_a_regression_task_is_held_out_without_stratifying() -> None:
    features = datasets.Features({"sentence": datasets.Value("string"), "label": datasets.Value("float32")})
    train = datasets.Dataset.from_dict({"sentence": [str(i) for i in range(50)], "label": [i / 10 for i in range(50)]},
                                       features=features)
    split = hold_out(datasets.DatasetDict(train=train), HOLDOUT)
    assert (len(split["train"]), len(split["train_holdout"])) == (45, 5)


def test_a_holdout_named_like_an_existing_split_is_refused_in_one_line() -> None:
    with pytest.raises(ValueError, match="names a split the task already has") as err:
        hold_out(glue_like([0, 1] * 20), OmegaConf.merge(HOLDOUT, {"split": "validation"}))
    assert "\n" not in str(err.value)


def test_poisoned_dev_labels_never_reach_the_trials_data(monkeypatch: pytest.MonkeyPatch) -> None:
    """A trial's data under task.holdout: train minus the carved part, scored on the carved part only; the dev set
    the table reports (labels poisoned here) appears in neither."""
    raw = glue_like([0, 1] * 50)
    raw["validation"] = raw["validation"].map(lambda ex: {"label": 1 - ex["label"]})
    monkeypatch.setitem(data.SOURCES, "glue", lambda task: raw)
    task = OmegaConf.create({"source": "glue", "holdout": HOLDOUT, "text_fields": ["sentence"], "max_length": 8,
                             "eval_splits": {"holdout": "train_holdout"}})
    trial = load_raw(task)

    def tokenizer(texts: list[str], truncation: bool, max_length: int) -> dict:
        return {"input_ids": [[len(t)] for t in texts]}

    tokenised = tokenize(trial, task, tokenizer)
    assert set(tokenised.evals) == {"holdout"} and len(tokenised.evals["holdout"]) == 10
    assert len(tokenised.train) == 90
    dev = set(raw["validation"]["sentence"])
    assert not dev & set(trial["train"]["sentence"]) and not dev & set(trial["train_holdout"]["sentence"])


def test_a_task_without_holdout_loads_exactly_its_source() -> None:
    raw = glue_like([0, 1] * 10)
    task = OmegaConf.create({"source": "glue"})
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(data.SOURCES, "glue", lambda cfg: raw)
        assert load_raw(task) is raw
