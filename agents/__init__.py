"""Agents that act in the simcity world: policies, training, compression, explanation.

`agents` imports `simcity`, never the other way round.
"""
