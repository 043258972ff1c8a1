"""How a benchmark starts, the same for each: its options parsed; with `--source REV`, itself
run again on that revision (harness/revision.py); else SIGTERM handled, the revision it runs
named in its options, the machine described and printed, and, when asked, a wait until the
machine is quiet.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from harness.machine import describe_machine, wait_until_quiet
from harness.report import print_machine, stop_on_sigterm
from harness.revision import run_revision, running_revision

Options = TypeVar("Options")


def begin(
    script: str,
    arguments: Sequence[str],
    parse_options: Callable[[list[str]], Options],
    title: Callable[[Options], str],
    *,
    wait_quiet: bool = True,
) -> tuple[Options, dict[str, Any]] | int:
    """(options, machine) for the benchmark `script` (its `__file__`) run with `arguments`; or
    the exit code of its run on another revision. `title` says what it measures; with
    `wait_quiet` it then waits `options.wait_quiet_s` (if positive) for other work to end."""
    listed = list(arguments)
    options = parse_options(listed)
    source = getattr(options, "source", None)
    if source is not None:
        return run_revision(Path(script).resolve(), source, listed)
    stop_on_sigterm()
    options = dataclasses.replace(options, source=running_revision())  # type: ignore[type-var]
    machine = describe_machine()
    print(title(options))
    print_machine(machine)
    quiet_s = getattr(options, "wait_quiet_s", 0)
    if wait_quiet and quiet_s > 0:
        cores_busy = wait_until_quiet(quiet_s)
        print(f"other processes use {cores_busy:.2f} cores; starting")
    return options, machine
