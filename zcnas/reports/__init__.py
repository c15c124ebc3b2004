"""Reports: every plot (matplotlib) and table format of zcnas, in one place. Pure output: it
draws and writes what the workflows above it computed."""

from zcnas.reports._plots import CurveGroup
from zcnas.reports._plots import ScatterPanel
from zcnas.reports._plots import accuracy_limits
from zcnas.reports._plots import anytime_curves
from zcnas.reports._plots import budget_curves
from zcnas.reports._plots import front
from zcnas.reports._plots import grid_mean
from zcnas.reports._plots import optuna_history
from zcnas.reports._plots import pareto_front
from zcnas.reports._plots import pyplot
from zcnas.reports._plots import rank_card
from zcnas.reports._plots import rank_scatter
from zcnas.reports._tables import fmt
from zcnas.reports._tables import markdown_table
from zcnas.reports._tables import mean_pm_std
from zcnas.reports._tables import write_csv


__all__ = [
    "CurveGroup", "ScatterPanel", "accuracy_limits", "anytime_curves", "budget_curves", "fmt",
    "front", "grid_mean", "markdown_table", "mean_pm_std", "optuna_history", "pareto_front",
    "pyplot", "rank_card", "rank_scatter", "write_csv",
]
