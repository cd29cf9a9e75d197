"""stylize-example-plugin: two losses (``meanstd``, ``histogram``), an optimizer (``spg``) and a start (``blurred``).

Installing the distribution registers them through entry points (see
setup.cfg); stylize finds them by name, nothing imports this package directly.
"""
__version__ = "0.1.0"
