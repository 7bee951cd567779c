"""Process and port helpers of the local broker: free ports, whether a pid runs and what it is, log tails."""

from __future__ import annotations

import contextlib
import os
import random
import socket
import subprocess
import time
from pathlib import Path

HOST = "127.0.0.1"


def port_in_use(port: int, host: str = HOST) -> bool:
    """True when something already holds ``host:port`` (a bind the way the broker binds fails)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return True
    return False


LOWEST_PICKED_PORT = 10000


def ephemeral_port_range() -> tuple[int, int]:
    """The ports the OS hands to outgoing connections (Linux's ip_local_port_range; its default elsewhere)."""
    with contextlib.suppress(OSError, ValueError):
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    return 32768, 60999


def free_port(host: str = HOST) -> int:
    """A port nobody holds right now, for a server to bind soon.

    Picked below the OS's ephemeral range when there is room: a port from that range may be handed to some
    outgoing connection between this check and the bind (a JVM takes seconds to get there), and the server
    would then fail with "address already in use".
    """
    low, _ = ephemeral_port_range()
    if low - LOWEST_PICKED_PORT >= 1000:
        for _ in range(100):
            port = random.randint(LOWEST_PICKED_PORT, low - 1)
            if not port_in_use(port, host):
                return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def free_port_run(count: int, host: str = HOST, attempts: int = 100) -> int:
    """The first of ``count`` consecutive ports nobody holds right now (a local cluster's port, port+1, ...)."""
    for _ in range(attempts):
        first = free_port(host)
        if first + count - 1 <= 65535 and not any(port_in_use(first + i, host) for i in range(1, count)):
            return first
    raise OSError(f"found no {count} consecutive free ports on {host} in {attempts} attempts")


def process_alive(pid: int) -> bool:
    """True while ``pid`` runs; a zombie counts as gone (and is reaped when it is our child)."""
    with contextlib.suppress(ChildProcessError):
        reaped, _ = os.waitpid(pid, os.WNOHANG)
        if reaped == pid:
            return False
    if Path("/proc/self").exists():
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            return False
        return state not in ("Z", "X")
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def process_cmdline(pid: int) -> str | None:
    """The command line of ``pid`` (from /proc, else ``ps``); None when it cannot be read."""
    if Path("/proc/self").exists():
        try:
            raw = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            return None
        return raw.replace(b"\0", b" ").decode(errors="replace").strip() or None
    try:
        result = subprocess.run(["ps", "-o", "command=", "-p", str(pid)], capture_output=True, text=True, check=False)
    except OSError:
        return None
    return result.stdout.strip() or None


def tail(path: Path, lines: int = 25) -> str:
    """The last lines of a log file ("" when it does not exist), for error messages."""
    try:
        with path.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(0, handle.tell() - 64 * 1024))
            text = handle.read().decode(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def wait_exit(pid: int, timeout: float) -> bool:
    """Wait up to ``timeout`` seconds for ``pid`` to end; True when it has."""
    deadline = time.monotonic() + timeout
    while process_alive(pid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.1)
    return True
