"""The network, enforced: a Python audit hook that refuses every non-local connection.

Probity never needs the network.  Both the app and the ``probity`` command call
:func:`install` first thing; from then on every attempt by any code in the
process (Probity, a dependency, a loaded model) to resolve a host name, connect,
send to or listen on an address that is not this machine's loopback raises
:class:`NetworkBlockedError` before the operating system is asked, is logged
with a short stack summary (logger ``probity.network`` and the log file of
:mod:`engine.logs`) and is counted for Help → About.

The one exception is a host the user names on purpose (a Dask scheduler):
:func:`allow_host` admits it and the addresses it resolves to.

Audit hooks cannot be removed, so :func:`install` is idempotent and there is no
``uninstall``.  Events are matched against a frozen table first, so the hook
costs one set lookup for the thousands of unrelated events Python raises.
Qt's own networking (QtNetwork) is not visible to audit hooks; Probity never
imports it, and a structural test keeps it so.
"""

from __future__ import annotations

import logging
import sys
import threading
import traceback
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

__all__ = [
    "NetworkBlockedError",
    "NetworkStatus",
    "allow_host",
    "install",
    "installed",
    "status",
]

_LOG = logging.getLogger("probity.network")

#: Audit events that reach the network, and which argument holds the address.
#: ``("addr", i)``: args[i] is a socket address; ``("host", i)``: args[i] is a host name;
#: ``("url", i)``: args[i] is a URL or a urllib Request.
_EVENTS: dict[str, tuple[str, int]] = {
    "socket.connect": ("addr", 1),
    "socket.sendto": ("addr", 1),
    "socket.sendmsg": ("addr", 1),
    "socket.bind": ("bind", 1),
    "socket.getaddrinfo": ("host", 0),
    "socket.gethostbyname": ("host", 0),
    "socket.gethostbyaddr": ("host", 0),
    "socket.getnameinfo": ("addr", 0),
    "http.client.connect": ("host", 1),
    "ftplib.connect": ("host", 1),
    "smtplib.connect": ("host", 1),
    "imaplib.open": ("host", 1),
    "poplib.connect": ("host", 1),
    "nntplib.connect": ("host", 1),
    "telnetlib.Telnet.open": ("host", 1),
    "urllib.Request": ("url", 0),
    "webbrowser.open": ("url", 0),
}
_EVENT_NAMES = frozenset(_EVENTS)
_LOCAL_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"})
_LOCAL_SCHEMES = frozenset({"file", "data"})


class NetworkBlockedError(ConnectionRefusedError):
    """A connection, lookup or listening socket for an address outside this machine.

    A :class:`ConnectionRefusedError` (an ``OSError``), so libraries treat it as the
    network failure it stands for.
    """


@dataclass(frozen=True)
class NetworkStatus:
    """What Help → About shows: whether the guard is on and what it refused."""

    blocked: bool
    refused: int
    last: str | None

    @property
    def summary(self) -> str:
        """``"network: blocked (2 attempts refused)"`` or ``"network: not guarded"``."""
        if not self.blocked:
            return "network: not guarded"
        if self.refused == 0:
            return "network: blocked (no attempt so far)"
        noun = "attempt" if self.refused == 1 else "attempts"
        return f"network: blocked ({self.refused:,} {noun} refused)"


class _Guard:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.installed = False
        self.refused = 0
        self.last: str | None = None
        self.allowed: frozenset[str] = frozenset()


_GUARD = _Guard()


def install() -> None:
    """Refuse every non-local network operation in this process from now on (idempotent)."""
    with _GUARD.lock:
        if _GUARD.installed:
            return
        sys.addaudithook(_hook)
        _GUARD.installed = True


def installed() -> bool:
    """Whether :func:`install` has run in this process."""
    return _GUARD.installed


def status() -> NetworkStatus:
    """The guard's state and the count of refused attempts since start."""
    with _GUARD.lock:
        return NetworkStatus(blocked=_GUARD.installed, refused=_GUARD.refused, last=_GUARD.last)


def allow_host(host: str, addresses: Iterable[str] = ()) -> None:
    """Admit a host the user named on purpose (a Dask scheduler) and the addresses it resolves to.

    ``addresses`` are added as given; when empty, the host is resolved once here
    (the lookup itself is admitted because the host is).
    """
    name = _normalise(host)
    with _GUARD.lock:
        _GUARD.allowed = _GUARD.allowed | {name}
    found = {_normalise(a) for a in addresses}
    if not found and not _is_local_host(name):
        import socket

        try:
            found = {_normalise(str(info[4][0])) for info in socket.getaddrinfo(host, None)}
        except OSError:
            found = set()
    with _GUARD.lock:
        _GUARD.allowed = _GUARD.allowed | found


# ---------------------------------------------------------------------------
# The hook
# ---------------------------------------------------------------------------


def _hook(event: str, args: tuple[Any, ...]) -> None:
    if event not in _EVENT_NAMES:
        return
    kind, index = _EVENTS[event]
    value = args[index] if len(args) > index else None
    target = _refused_target(kind, value)
    if target is None:
        return
    _refuse(event, target)


def _refused_target(kind: str, value: Any) -> str | None:
    """The address shown in the refusal, or None when the operation stays on this machine."""
    if kind == "url":
        return _url_target(value)
    if kind == "host":
        if value is None:
            return None
        host = value.decode("ascii", "replace") if isinstance(value, bytes) else str(value)
        return None if _admitted(host) else host
    # A socket address: a path (AF_UNIX), a (host, port, ...) tuple, or a kernel id (AF_NETLINK).
    if not isinstance(value, tuple) or not value:
        return None
    host = value[0]
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    if not isinstance(host, str):
        return None
    if kind == "bind" and host == "":
        return "all interfaces"  # INADDR_ANY: listening for other machines
    port = value[1] if len(value) > 1 else ""
    return None if _admitted(host) else f"{host}:{port}"


def _url_target(value: Any) -> str | None:
    url = getattr(value, "full_url", value)
    if not isinstance(url, str):
        return None
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.scheme.lower() in _LOCAL_SCHEMES or (not parts.scheme and not parts.netloc):
        return None
    return None if parts.hostname and _admitted(parts.hostname) else url


def _admitted(host: str) -> bool:
    name = _normalise(host)
    return _is_local_host(name) or name in _GUARD.allowed


def _normalise(host: str) -> str:
    name = host.strip().lower().rstrip(".")
    if name.startswith("[") and name.endswith("]"):
        name = name[1:-1]
    return name.split("%", 1)[0]  # drop an IPv6 scope id


def _is_local_host(name: str) -> bool:
    if name in _LOCAL_NAMES:
        return True
    if name.startswith("127.") or name in ("::1", "0:0:0:0:0:0:0:1"):
        import ipaddress

        try:
            return ipaddress.ip_address(name).is_loopback
        except ValueError:
            return False
    if name.startswith("::ffff:127."):
        return True
    return False


def _refuse(event: str, target: str) -> None:
    stack = traceback.extract_stack()[:-3]  # drop the hook's own frames
    frames = [f for f in stack if "/engine/netguard.py" not in f.filename.replace("\\", "/")][-6:]
    where = " <- ".join(f"{_short(f.filename)}:{f.lineno} {f.name}" for f in reversed(frames)) or "unknown"
    message = f"Probity blocked a network operation ({event} to {target}); it works offline only."
    with _GUARD.lock:
        _GUARD.refused += 1
        _GUARD.last = f"{event} {target}"
    _LOG.warning("%s Called from: %s", message, where)
    _append_log(f"{message} Called from: {where}")
    raise NetworkBlockedError(message)


def _short(filename: str) -> str:
    """A file name from its package down (``pandas/io/common.py``), without the install prefix."""
    path = filename.replace("\\", "/")
    for marker in ("/site-packages/", "/dist-packages/"):
        if marker in path:
            return path.rsplit(marker, 1)[1]
    parts = path.split("/")
    return "/".join(parts[-3:])


def _append_log(line: str) -> None:
    try:
        import datetime as _dt

        from engine.logs import log_dir

        folder = log_dir()
        folder.mkdir(parents=True, exist_ok=True)
        stamp = _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
        with open(folder / "network.log", "a", encoding="utf-8") as handle:
            handle.write(f"{stamp} {line}\n")
    except OSError:
        pass  # a read-only log folder must not turn a refusal into a crash
