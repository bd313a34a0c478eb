"""Reading a JSON object we wrote (manifest.json, run.json), with a one-line error when it is damaged."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from edge.errors import UserError


def read_json_object(path: Path, fix: str, error: type[UserError] = UserError) -> dict[str, Any]:
    """The JSON object in `path`; raise `error` ending in `fix` if the file is not one.

    Example:
        >>> read_json_object(Path("runs/a/run.json"), "fix or re-create the run")
    """
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as problem:
        raise error(f"{path} is not valid JSON ({problem}): {fix}") from problem
    if not isinstance(data, dict):
        raise error(f"{path} is not a JSON object: {fix}")
    return data
