"""Hyperparameter selection on validation data: trials of a tune_* experiment -> one choice per table row.

`trials` finds the trial records, `choose` picks per row and task and checks that the trials never scored on the
data the table reports, `report` writes the choice as a `selection` config option, a table of every trial and a
figure.
"""
