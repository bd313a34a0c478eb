"""Options that work on either side of an action word: `edgekit models promote v1 --registry D`
as well as `edgekit models --registry D promote v1`.

argparse reads an option only in the parser it belongs to, so a command's shared option is
added to the command's parser (with its default) and to each action's parser with a
suppressed default (absent there, it does not overwrite a value given before the action).
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable
from typing import Any


def add_shared_option(parser: argparse.ArgumentParser, actions: Iterable[argparse.ArgumentParser],
                      *flags: str, **kwargs: Any) -> None:
    """Add one option to `parser` and to every parser in `actions`.

    Example:
        >>> add_shared_option(parser, [list_parser, show_parser], "--json", action="store_true")
    """
    parser.add_argument(*flags, **kwargs)
    for action in actions:
        action.add_argument(*flags, **{**kwargs, "default": argparse.SUPPRESS})
