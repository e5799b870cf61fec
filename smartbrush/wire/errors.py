"""The one base of every error a user may see (CLI, daemon clients, editor plugins).

A UserError is shown as one line (`first_line`), never as a traceback. Part of the vendored wire
package, so the plugins and the command line share it.
"""


class UserError(Exception):
    """A problem the user can act on; str(error) is the message to show them."""


def first_line(error: BaseException) -> str:
    """An exception as one line for a user message (its type name when it says nothing)."""
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0]
