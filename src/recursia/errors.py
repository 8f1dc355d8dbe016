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
