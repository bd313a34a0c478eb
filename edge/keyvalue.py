"""`key=value,key=value` option text (sources, parts, dataset references) read one way."""

from __future__ import annotations

from collections.abc import Iterable

from edge.errors import UserError


def parse_key_values(text: str, what: str, example: str, known: Iterable[str] | None = None) -> dict[str, str]:
    """"every=10,folder=frames" -> {"every": "10", "folder": "frames"}; spaces around items are dropped.

    `what` names the options in errors ("jpeg part option"), `example` shows a correct one; with
    `known`, any other key is refused.
    """
    allowed = None if known is None else set(known)
    values: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep:
            raise UserError(f"bad {what} {item!r}: write key=value, e.g. {example}")
        if allowed is not None and key not in allowed:
            raise UserError(f"{what} {item!r} is not one of {', '.join(f'{k}=...' for k in sorted(allowed))}")
        values[key] = value.strip()
    return values
