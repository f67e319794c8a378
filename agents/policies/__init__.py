"""What acts in the world: the `Policy` protocol, baselines, the clairvoyant
reference, the attention
policy, the privileged teacher, and the files trained policies are stored in."""
