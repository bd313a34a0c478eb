"""Errors a user can cause; the CLI prints them as one line, without a traceback."""

from collections.abc import Iterable


class UserError(Exception):
    """A mistake the user can fix: bad path, bad option, bad file.

    The message says what is wrong and what to do. `exit_code` is what the CLI returns.
    """

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class MissingExtraError(UserError):
    """A host command was run where the host extra is not installed."""

    def __init__(self, command: str, module: str, extra: str = "host") -> None:
        super().__init__(
            f"`edgekit {command}` needs {module}, which comes with the {extra} extra: "
            f"pip install 'edgekit[{extra}]'",
            exit_code=2,
        )


def reject_unknown_keys(data: Iterable[str], known: Iterable[str], what: str) -> None:
    """Raise a UserError naming the keys of `data` that are not in `known` (config typos)."""
    known = set(known)
    unknown = set(data) - known
    if unknown:
        raise UserError(f"unknown {what} {sorted(unknown)}: known are {sorted(known)}")
