"""Tabulating the fault replays: attacks tried, handled and data lost, per class of failure.

Every test in tests/faults marked `@pytest.mark.fault("<class>")` is one attack. A test that
passes was handled; one that fails was not; a skip is listed with its reason. A test reports
samples (or files, or decisions) lost with pytest's own `record_property("data_lost", n)`.

With EDGEKIT_FAULTS_REPORT=<path> set (`make bench-faults` sets it) the table is also written
there as Markdown. Works under pytest-xdist: the class rides in each report's user_properties,
which workers send to the controller.
"""

from __future__ import annotations

import os
import platform
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPORT_ENV = "EDGEKIT_FAULTS_REPORT"


@dataclass
class _Class:
    tried: int = 0
    handled: int = 0
    skipped: int = 0
    lost: int = 0
    failures: list[str] = field(default_factory=list)
    skips: list[str] = field(default_factory=list)


_results: dict[str, _Class] = defaultdict(_Class)
_seen: set[str] = set()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Put the test's fault class into its report (on the worker, where the marker is known)."""
    marker = item.get_closest_marker("fault")
    if marker is not None and call.when == "setup":
        name = marker.args[0] if marker.args else marker.kwargs.get("name", "unnamed")
        if ("fault", name) not in item.user_properties:
            item.user_properties.append(("fault", name))
    yield


def pytest_runtest_logreport(report):
    """Count each marked test once: its call, or its setup when setup failed or skipped."""
    props = dict(report.user_properties)
    if "fault" not in props or report.nodeid in _seen:
        return
    if report.when == "call" or (report.when == "setup" and not report.passed):
        _seen.add(report.nodeid)
        entry = _results[props["fault"]]
        entry.tried += 1
        lost = props.get("data_lost", 0)
        entry.lost += int(lost) if isinstance(lost, int) else 0
        test = report.nodeid.split("::", 1)[-1]
        if report.passed:
            entry.handled += 1
        elif report.skipped:
            entry.skipped += 1
            reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
            entry.skips.append(f"{test}: {reason}")
        else:
            entry.failures.append(test)


def faults_table() -> list[str]:
    """The Markdown table of the results so far."""
    lines = ["| class of failure | attacks tried | handled | not handled | skipped | data lost |",
             "|---|---:|---:|---:|---:|---:|"]
    total = _Class()
    for name in sorted(_results):
        entry = _results[name]
        failed = entry.tried - entry.handled - entry.skipped
        lines.append(f"| {name} | {entry.tried} | {entry.handled} | {failed} | {entry.skipped} | {entry.lost} |")
        total.tried += entry.tried
        total.handled += entry.handled
        total.skipped += entry.skipped
        total.lost += entry.lost
    lines.append(f"| **all** | **{total.tried}** | **{total.handled}** | "
                 f"**{total.tried - total.handled - total.skipped}** | **{total.skipped}** | **{total.lost}** |")
    return lines


def pytest_terminal_summary(terminalreporter):
    if not _results:
        return
    terminalreporter.section("fault replays (issue 14)")
    for line in faults_table():
        terminalreporter.write_line(line)
    path = os.environ.get(REPORT_ENV)
    if path:
        _write_report(Path(path))
        terminalreporter.write_line(f"written to {path}")


def _write_report(path: Path) -> None:
    lines = [
        "# Fault replays",
        "",
        f"`make bench-faults` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
        f"{platform.machine()}, Python {platform.python_version()}, uid {os.geteuid()}.",
        "Each row is one class of failure from issue 14; each attack is one test in tests/faults "
        "(marker `fault`). Handled: refused with one line or survived, as the test asserts. "
        "Data lost: samples/files the tests counted as lost (0 is the only acceptable number).",
        "",
        *faults_table(),
    ]
    failures = [(name, test) for name, entry in sorted(_results.items()) for test in entry.failures]
    if failures:
        lines += ["", "## Not handled", ""] + [f"- {name}: `{test}`" for name, test in failures]
    skips = [(name, text) for name, entry in sorted(_results.items()) for text in entry.skips]
    if skips:
        lines += ["", "## Skipped", ""] + [f"- {name}: {text}" for name, text in skips]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
