"""Optimizer over policy grids: grids, the objective and constraints, validation splits,
and the grid search itself."""
