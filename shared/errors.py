"""The errors the command line turns into one line and an exit code.

Exit codes (README): 0 success, 1 failure, 2 bad usage or configuration, 130 interrupted.
`UsageError` and its subclasses are the user's to fix (wrong option, config value, run directory
or data location): exit 2. Anything else that stops a command is a failure: exit 1.
"""

from __future__ import annotations


class UsageError(ValueError):
    """Bad usage: an option, a config value, a run directory or a data location (exit 2)."""


class ConfigError(UsageError):
    """A configuration problem; the message names the file/line and the dotted key."""


class DataError(UsageError):
    """Data that cannot be read as configured: missing file or folder, malformed line (exit 2).

    The message names the file (and line) and, where it comes from the config, the key.
    """


class RunDirError(UsageError):
    """The run directory cannot be used as asked (exit 2)."""


class InputError(UsageError):
    """An input given to `predict` or an export that cannot be used (exit 2 when all fail)."""
