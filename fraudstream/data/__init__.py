"""The creditcard.csv data set: validation and loading (``check``), synthesis (``synth``), choice (``source``).

Import the submodules directly; this package imports nothing itself, so ``fraudstream --help`` stays fast.
"""
