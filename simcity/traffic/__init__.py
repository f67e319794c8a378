"""Traffic: static user-equilibrium assignment, path loads, demand, the day of traffic.

The assignment's public names are re-exported here: ``from simcity.traffic import assign``.
"""

from simcity.traffic.assignment import Assignment, all_or_nothing, assign, bpr_time, relative_gap

__all__ = ["Assignment", "all_or_nothing", "assign", "bpr_time", "relative_gap"]
