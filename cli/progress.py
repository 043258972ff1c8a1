"""Progress of long commands (node check, backup, restore), on stderr.

On a terminal: one line redrawn in place ("\\r"), with a bar, the count and the percentage,
ended by a newline when the work is done. Not on a terminal (a log file, a pipe, a test): a
plain line each time the whole percentage moves, starting with it ("12% checked block 120 of
1000"), so that a program can read the first word. Nothing is printed when the total is 0.
"""

from __future__ import annotations

import sys
from typing import TextIO

BAR_WIDTH_CHARS = 30


class ProgressReporter:
    """Report `done` of `total` units of work: `update(done)` as it advances, `finish()` at
    the end. `what` names one unit ("checked block", "restored entry")."""

    def __init__(self, what: str, total: int, stream: TextIO | None = None) -> None:
        self.what = what
        self.total = max(0, total)
        self.stream = stream if stream is not None else sys.stderr
        self.terminal = self.stream.isatty()
        self._shown = -1  # the last percentage shown
        self._done = 0

    def percent(self, done: int) -> int:
        return 100 if self.total == 0 else min(100, 100 * max(0, done) // self.total)

    def update(self, done: int) -> None:
        self._done = done
        if self.total == 0:
            return
        percent = self.percent(done)
        if percent == self._shown:
            return
        self._shown = percent
        if self.terminal:
            filled = BAR_WIDTH_CHARS * percent // 100
            bar = "#" * filled + " " * (BAR_WIDTH_CHARS - filled)
            self.stream.write(f"\r{self.what} {done} of {self.total} [{bar}] {percent:3d}%")
        else:
            self.stream.write(f"{percent}% {self.what} {done} of {self.total}\n")
        self.stream.flush()

    def finish(self) -> None:
        """Show 100% (once) and end the terminal's line."""
        if self.total == 0:
            return
        self.update(self.total)
        if self.terminal:
            self.stream.write("\n")
            self.stream.flush()
