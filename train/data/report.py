"""What a loader skipped and why: counted, listed, printed at the end."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class LoadReport:
    """Files seen, images loaded, and every skipped input with its reason.

    Example:
        >>> report = LoadReport(seen=3, loaded=2, skipped=[("a/b.jpg", "empty file")])
        >>> print(report.format())  # doctest: +ELLIPSIS
        loaded 2 of 3 files; skipped 1: empty file=1
        ...
    """

    seen: int = 0
    loaded: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def skip(self, source: str, reason: str) -> None:
        self.skipped.append((source, reason))

    def reasons(self) -> Counter[str]:
        return Counter(reason.split(":")[0].split(" (")[0] for _, reason in self.skipped)

    def format(self, limit: int = 20) -> str:
        """The report as text; at most `limit` skipped inputs are listed."""
        head = f"loaded {self.loaded} of {self.seen} files"
        if self.skipped:
            head += f"; skipped {len(self.skipped)}: " + ", ".join(f"{r}={k}" for r, k in self.reasons().most_common())
        lines = [head, *(f"  note: {note}" for note in self.notes)]
        for source, reason in self.skipped[:limit]:
            lines.append(f"  skipped {source}: {reason}")
        if len(self.skipped) > limit:
            lines.append(f"  ... and {len(self.skipped) - limit} more")
        return "\n".join(lines)

    def write(self, path: str | Path) -> Path:
        """Write every skipped input, one `source<TAB>reason` line each."""
        path = Path(path)
        # names are printable already (train.data.images.printable); a stray undecodable byte is escaped
        path.write_text("".join(f"{s}\t{r}\n" for s, r in self.skipped), encoding="utf-8",
                        errors="backslashreplace")
        return path

    def to_dict(self) -> dict:
        return {"seen": self.seen, "loaded": self.loaded, "skipped": len(self.skipped),
                "reasons": dict(self.reasons()), "notes": list(self.notes)}
