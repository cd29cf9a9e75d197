"""Built-in loss terms; each is registered in setup.cfg under ``stylize.losses``."""
