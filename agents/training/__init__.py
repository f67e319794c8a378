"""How policies are made and judged: PPO (loop, math, config, logs), the teacher stage,
supervised fits, evaluation."""
