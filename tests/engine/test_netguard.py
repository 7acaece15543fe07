"""The network guard: any non-local connection in a guarded process is refused, logged and counted.

Each case runs in a fresh interpreter (audit hooks cannot be removed) without
pytest-socket, so what refuses the connection is the guard, not the test setup.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# An address from TEST-NET-1 (RFC 5737): never routed, so nothing could answer even unguarded.
REMOTE = "192.0.2.10"


def _run(code: str, log_dir: Path) -> dict:
    env = {**os.environ, "PROBITY_LOG_DIR": str(log_dir), "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, env=env, cwd=ROOT, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["stderr"] = proc.stderr
    return result


PRELUDE = """
import json, socket
from engine import netguard
netguard.install()
def attempt(fn):
    try:
        fn()
    except netguard.NetworkBlockedError as exc:
        return "blocked: " + str(exc)
    except OSError as exc:
        return "oserror: " + type(exc).__name__
    return "ok"
"""


def test_a_dependency_reaching_for_the_network_is_refused_and_logged(tmp_path: Path) -> None:
    out = _run(
        PRELUDE
        + f"""
import pandas, urllib.request
r = {{
    "pandas": attempt(lambda: pandas.read_csv("http://{REMOTE}/data.csv")),
    "urlopen": attempt(lambda: urllib.request.urlopen("https://example.org/")),
    "create_connection": attempt(lambda: socket.create_connection(("{REMOTE}", 80), timeout=1)),
    "connect": attempt(lambda: socket.socket().connect(("{REMOTE}", 443))),
    "dns": attempt(lambda: socket.getaddrinfo("example.org", 80)),
    "udp": attempt(lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"x", ("{REMOTE}", 53))),
    "listen_everywhere": attempt(lambda: socket.socket().bind(("0.0.0.0", 0))),
}}
r["status"] = netguard.status().summary
print(json.dumps(r))
""",
        tmp_path,
    )
    for key in ("pandas", "urlopen", "create_connection", "connect", "dns", "udp", "listen_everywhere"):
        assert out[key].startswith("blocked: Probity blocked a network operation"), (key, out[key])
    assert "example.org" in out["dns"] and REMOTE in out["connect"]
    assert out["status"] == "network: blocked (7 attempts refused)"
    log = (tmp_path / "network.log").read_text(encoding="utf-8").splitlines()
    assert len(log) == 7
    # The stack summary names the caller that tried, e.g. pandas' own module for read_csv.
    assert any("pandas" in line.split("Called from:")[1] for line in log)
    # The logger's warning reaches stderr too, so a command-line user sees every refusal.
    assert out["stderr"].count("Probity blocked a network operation") == 7


def test_loopback_and_unix_sockets_still_work(tmp_path: Path) -> None:
    out = _run(
        PRELUDE
        + """
import os, tempfile
server = socket.socket(); server.bind(("127.0.0.1", 0)); server.listen(1)
port = server.getsockname()[1]
r = {"loopback": attempt(lambda: socket.create_connection(("127.0.0.1", port), timeout=5).close()),
     "localhost": attempt(lambda: socket.create_connection(("localhost", port), timeout=5).close())}
path = os.path.join(tempfile.mkdtemp(), "s")
unix = socket.socket(socket.AF_UNIX); unix.bind(path); unix.listen(1)
r["unix"] = attempt(lambda: socket.socket(socket.AF_UNIX).connect(path))
r["refused"] = netguard.status().refused
print(json.dumps(r))
""",
        tmp_path,
    )
    assert (out["loopback"], out["localhost"], out["unix"]) == ("ok", "ok", "ok")
    assert out["refused"] == 0


def test_a_host_the_user_names_is_admitted_and_no_other(tmp_path: Path) -> None:
    out = _run(
        PRELUDE
        + f"""
netguard.allow_host("scheduler.example", addresses=["{REMOTE}"])
r = {{"named": attempt(lambda: socket.getaddrinfo("scheduler.example", 8786)),
     "its_address": attempt(lambda: socket.socket().connect(("{REMOTE}", 1))),
     "other": attempt(lambda: socket.socket().connect(("192.0.2.11", 1)))}}
print(json.dumps(r))
""",
        tmp_path,
    )
    # Admitted operations reach the operating system (which has no route or name for them here).
    assert not out["named"].startswith("blocked") and not out["its_address"].startswith("blocked")
    assert out["other"].startswith("blocked")


def test_the_probity_command_guards_its_process(tmp_path: Path) -> None:
    out = _run(
        """
import json, contextlib, io
from engine import cli, netguard
with contextlib.redirect_stderr(io.StringIO()):
    code = cli.main(["inspect-model", "no-such-file.skops"])
print(json.dumps({"code": code, "installed": netguard.installed()}))
""",
        tmp_path,
    )
    assert out == {"code": 2, "installed": True, "stderr": out["stderr"]}


def test_status_before_install_says_not_guarded() -> None:
    from engine.netguard import NetworkStatus

    assert NetworkStatus(blocked=False, refused=0, last=None).summary == "network: not guarded"
    assert NetworkStatus(blocked=True, refused=1, last="x").summary == "network: blocked (1 attempt refused)"


@pytest.mark.parametrize("module", ["PySide6.QtNetwork", "PySide6.QtWebEngineCore", "QNetworkAccessManager"])
def test_no_code_of_probity_uses_qt_networking(module: str) -> None:
    # Qt's own sockets are invisible to Python audit hooks, so Probity must never use them.
    for folder in ("engine", "gui"):
        for path in (ROOT / folder).rglob("*.py"):
            assert module not in path.read_text(encoding="utf-8"), f"{path} uses {module}"
    assert module not in (ROOT / "main.py").read_text(encoding="utf-8")
