"""Errors that reach the user.

Every error Recursia raises on purpose is a `RecursiaError`: the command line prints its message (no traceback)
and exits with status 2. Messages name the problem and, where there is one, the fix.
"""


class RecursiaError(Exception):
    """Base class: an expected failure with a message written for the user."""


class ConfigError(RecursiaError):
    """A preset, YAML file or `key=value` override that does not fit the configuration schema."""


class DataError(RecursiaError):
    """A data file or directory that is missing, malformed or inconsistent."""


class PuzzleError(RecursiaError, ValueError):
    """A single puzzle given by the user (a string or a file line) that cannot be read."""


class CheckpointError(RecursiaError):
    """A checkpoint that is missing, corrupt, or does not match the run or model it is loaded into."""


class VizError(RecursiaError):
    """A picture, viewer or plot that cannot be made: an unsupported puzzle, missing run files or Pillow."""


class RecursiaWarning(UserWarning):
    """Something the user should know that does not stop the command (the CLI prints `warning: ...`)."""


def show_warnings_as_lines() -> None:
    """Print RecursiaWarnings as `warning: MESSAGE` on stderr (no file and line of the library); others as usual."""
    import sys
    import warnings

    default = warnings.showwarning
    if getattr(default, "recursia", False):  # installed already (main() called again in one process)
        return

    def show(message, category, filename, lineno, file=None, line=None):  # noqa: ANN001 (warnings' signature)
        if issubclass(category, RecursiaWarning):
            print(f"warning: {message}", file=file or sys.stderr)
        else:
            default(message, category, filename, lineno, file, line)

    show.recursia = True  # type: ignore[attr-defined]
    warnings.showwarning = show
