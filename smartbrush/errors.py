"""Errors shared by the command-line modules (its own module so `python -m smartbrush.cli` sees one class)."""


class UserError(Exception):
    """A problem with the user's input: printed as one line, never as a traceback."""


def first_line(error: BaseException) -> str:
    """An exception as one line for a user message (its type name when it says nothing)."""
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0]
