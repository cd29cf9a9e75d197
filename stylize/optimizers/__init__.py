"""Built-in optimizers; registered in setup.cfg under ``stylize.optimizers``."""
