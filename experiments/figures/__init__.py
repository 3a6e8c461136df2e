"""Figures drawn from run records only (no training): every number a figure shows is a value some record holds.

`sources` finds the records (through experiments.tables.collect, or cell by cell for series the tables drop),
`quality`, `sweeps` and `update_norms` draw, `registry` names every figure and what it reads.
"""
