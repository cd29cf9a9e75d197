"""A run under way: the Job and its events, the level loop, convergence, checkpoints, the ETA and the plan's text."""
