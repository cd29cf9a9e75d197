"""Errors a user can act on.

Anything raised as a ``StylizeError`` is shown by the CLI as one line on
stderr with the error's exit code, never as a traceback: the message must say
what is wrong and how to fix it.
"""


#: Exit code of an unexpected exception (a bug, not a bad input): sysexits' EX_SOFTWARE.
INTERNAL_ERROR_EXIT = 70


class StylizeError(Exception):
    """Base class: a problem with the user's input or environment."""

    exit_code = 1


class UsageError(StylizeError):
    """Options that cannot work together or are out of range."""

    exit_code = 2


class ImageError(StylizeError):
    """An input image that cannot be read, or an output that cannot be written."""

    exit_code = 3


class ModelError(StylizeError):
    """Missing, corrupt or incompatible network definition or weights."""

    exit_code = 4


class PluginError(StylizeError):
    """A plugin name that is unknown, ambiguous or fails to load."""

    exit_code = 5


class NumericalError(StylizeError):
    """The objective became NaN or infinite; ``image`` is the last good result, if any."""

    exit_code = 6

    def __init__(self, message: str, image=None):
        super().__init__(message)
        self.image = image


class ResourceError(StylizeError):
    """The run would need more memory than the machine has; the message says what would fit."""

    exit_code = 7


def one_line(error: BaseException) -> str:
    """An exception's message squeezed onto one line, since errors are shown as one line."""
    return " ".join(str(error).split()) or type(error).__name__
