"""Time from launching the installed bundle's ``probity-gui`` to its window being visible.

``python -m bench.bundle_start [--bundle build/dist-cpu/probity] [--runs 5] [--limit 3.0]`` starts a
virtual X screen (Xvfb) and launches the bundle's ``probity-gui`` on it through Qt's xcb platform
``--runs`` times, each time with the same fresh home folder (so the first run is a first start and
the later ones find their settings, as a user's would).  The clock starts just before the process
is spawned and stops when ``xdotool`` first finds a visible window named "Probity"; the app is then
closed and the next run starts.  It prints every run, the median and min–max, and exits 1 when
the median exceeds ``--limit`` seconds (3.0 by default: the budget in docs/install.md).

Needs Xvfb and xdotool (Debian: xvfb, xdotool) and a bundle from ``make installer``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_BUNDLE = ROOT / "build" / "dist-cpu" / "probity"
LIMIT_SECONDS = 3.0


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.bundle_start", description=__doc__.splitlines()[0])
    p.add_argument("--bundle", type=Path, default=DEFAULT_BUNDLE, help="the one-folder bundle (make installer)")
    p.add_argument("--runs", type=int, default=5, help="launches (default 5)")
    p.add_argument("--limit", type=float, default=LIMIT_SECONDS, help="fail when the median exceeds this")
    p.add_argument("--timeout", type=float, default=60.0, help="give up on one launch after this many seconds")
    return p.parse_args(argv)


def _start_xvfb(workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    read_fd, write_fd = os.pipe()
    xvfb = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write_fd), "-nolisten", "tcp", "-screen", "0", "1366x768x24"],
        pass_fds=(write_fd,),
        stdout=subprocess.DEVNULL,
        stderr=open(workdir / "xvfb.log", "wb"),
    )
    os.close(write_fd)
    with os.fdopen(read_fd) as pipe:
        display = pipe.readline().strip()
    if not display:
        xvfb.kill()
        raise SystemExit("bench.bundle_start: Xvfb did not start (see xvfb.log).")
    return xvfb, f":{display}"


def _visible(env: dict[str, str]) -> bool:
    found = subprocess.run(
        ["xdotool", "search", "--onlyvisible", "--name", "^Probity"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        check=False,
    )
    return found.returncode == 0 and bool(found.stdout.strip())


def launch_once(gui: Path, env: dict[str, str], timeout: float) -> float:
    """Seconds from spawning ``gui`` to its window being visible; the app is closed afterwards."""
    start = time.perf_counter()
    process = subprocess.Popen([str(gui)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while not _visible(env):
            if process.poll() is not None:
                raise SystemExit(f"bench.bundle_start: {gui} exited with {process.returncode} before its window.")
            if time.perf_counter() - start > timeout:
                raise SystemExit(f"bench.bundle_start: no window from {gui} within {timeout:.0f} s.")
            time.sleep(0.01)
        return time.perf_counter() - start
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse(argv)
    gui = args.bundle / ("probity-gui.exe" if sys.platform == "win32" else "probity-gui")
    if not gui.is_file():
        print(f"bench.bundle_start: no bundle at {args.bundle}; build it with `make installer`.", file=sys.stderr)
        return 2
    missing = [tool for tool in ("Xvfb", "xdotool") if shutil.which(tool) is None]
    if missing:
        print(
            f"bench.bundle_start: needs {' and '.join(missing)} (Debian: apt-get install xvfb xdotool).",
            file=sys.stderr,
        )
        return 2
    with tempfile.TemporaryDirectory(prefix="probity-bench-") as tmp:
        workdir = Path(tmp)
        xvfb, display = _start_xvfb(workdir)
        home = workdir / "home"
        home.mkdir()
        env = {k: v for k, v in os.environ.items() if k not in ("WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
        env.update(
            DISPLAY=display,
            QT_QPA_PLATFORM="xcb",
            HOME=str(home),
            XDG_CONFIG_HOME=str(home / ".config"),
            XDG_STATE_HOME=str(home / ".local/state"),
            XDG_DATA_HOME=str(home / ".local/share"),
        )
        try:
            times = [launch_once(gui, env, args.timeout) for _ in range(args.runs)]
        finally:
            xvfb.terminate()
            xvfb.wait()
    median = statistics.median(times)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"bundle {args.bundle} ({os.cpu_count()} CPUs, load average {load:.2f})")
    print("runs (s): " + ", ".join(f"{t:.2f}" for t in times))
    print(
        f"window visible: median {median:.2f} s (min {min(times):.2f}, max {max(times):.2f}); limit {args.limit:.1f} s"
    )
    return 0 if median <= args.limit else 1


if __name__ == "__main__":
    raise SystemExit(main())
