"""Errors shared by the command-line modules (its own module so `python -m smartbrush.cli` sees one class)."""


class UserError(Exception):
    """A problem with the user's input: printed as one line, never as a traceback."""
