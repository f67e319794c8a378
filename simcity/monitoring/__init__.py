"""Sensors, incidents, the operator's monitoring state and the true state it cannot see."""
