"""Terminal progress for the CLI: a bar on a terminal, throttled lines otherwise."""

from __future__ import annotations

import sys
import time
from typing import TextIO

__all__ = ["TerminalProgress"]


class TerminalProgress:
    """A progress callback ``(fraction, message)`` that writes to a stream (stderr).

    ``mode="auto"`` redraws one line with a bar on a terminal and stays silent
    elsewhere, so a failing run's stderr is exactly one line; ``"lines"`` prints a
    line whenever the message changes (for logs); ``"bar"`` and ``"none"`` force.
    """

    def __init__(
        self, stream: TextIO | None = None, *, mode: str = "auto", width: int = 28, min_interval: float = 0.1
    ) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.width = width
        self.min_interval = min_interval
        if mode == "auto":
            mode = "bar" if bool(getattr(self.stream, "isatty", lambda: False)()) else "none"
        self.mode = mode
        self.is_tty = mode == "bar"
        self._last_time = 0.0
        self._last_message = ""
        self._drawn = False

    def __call__(self, fraction: float, message: str = "") -> None:
        if self.mode == "none":
            return
        now = time.monotonic()
        if self.is_tty:
            if now - self._last_time < self.min_interval and fraction < 1.0 and message == self._last_message:
                return
            filled = int(round(self.width * fraction))
            bar = "█" * filled + "·" * (self.width - filled)
            self.stream.write(f"\r{bar} {fraction * 100:5.1f}%  {message[:60]:<60}")
            self.stream.flush()
            self._drawn = True
        elif message != self._last_message or now - self._last_time > 5.0:
            self.stream.write(f"[{fraction * 100:5.1f}%] {message}\n")
            self.stream.flush()
        self._last_time = now
        self._last_message = message

    def close(self) -> None:
        """End the bar's line so later output starts on a fresh line."""
        if self.is_tty and self._drawn:
            self.stream.write("\n")
            self.stream.flush()
            self._drawn = False
