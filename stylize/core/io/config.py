"""Where stylize keeps downloaded and generated files."""
import os
from pathlib import Path


def stylize_home() -> Path:
    """The cache directory: ``$STYLIZE_HOME``, else ``~/.cache/stylize``."""
    return Path(os.environ.get("STYLIZE_HOME") or Path.home() / ".cache" / "stylize")
