"""The errors a command prints as one line on stderr (exit code 2) instead of a traceback
(memeplex.cli.run_cli catches them)."""


class UsageError(Exception):
    """Bad input from the user: reported as one line on stderr, exit code 2."""


class CheckpointError(Exception):
    """A checkpoint is missing, unreadable, or does not fit the environment."""
