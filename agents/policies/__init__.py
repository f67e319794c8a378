"""What acts in the world: the `Policy` protocol, baselines, the oracle, the attention
policy, the privileged teacher, and the files trained policies are stored in."""
