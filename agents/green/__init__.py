"""Cheaper and explained policies: compression, distillation, calibration, Pareto fronts,
fine-tuning, explanations."""
