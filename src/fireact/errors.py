"""The one exception type for user-facing problems.

Anything a user can fix (a bad file, an unknown name, a missing key) raises `FireactError` with
a one-line message that names the file, line, field or value and says what to do. The CLI prints
it on stderr as `error: <message>` and exits with code 2, without a traceback unless `--debug`.
"""

from __future__ import annotations


class FireactError(Exception):
    """A problem in the user's input or environment, reported in one line (exit code 2)."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(message.split()))
