"""Child processes of the demo: started with their own logs, stopped in order, never left behind.

Each child runs ``python -m fraudstream <command>`` in its own session so a terminal Ctrl-C reaches the demo
alone, which then stops the children in a chosen order (SIGTERM, then SIGKILL after a grace period). On Linux
the kernel also sends SIGTERM to a child whose parent dies, so even a killed demo leaves nothing running.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from fraudstream.exceptions import FraudstreamError

log = logging.getLogger(__name__)
PR_SET_PDEATHSIG = 1
# Loaded once here, not in the child: between fork and exec the child should only make the one system call.
_LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None


def _die_with_parent() -> None:  # runs in the child between fork and exec
    if _LIBC is not None:
        _LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


class ChildFailedError(FraudstreamError):
    """A service the demo started exited or did not become ready."""


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def running(self) -> bool:
        return self.process.poll() is None

    def log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


@dataclass
class Supervisor:
    """Starts ``fraudstream`` subcommands as children and stops them all, last started first."""

    log_dir: Path
    env: dict[str, str]
    children: list[Child] = field(default_factory=list)

    def start(self, name: str, *args: str) -> Child:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.log_dir / f"{name}.log"
        with log_path.open("wb") as sink:
            process = subprocess.Popen(
                [sys.executable, "-m", "fraudstream", *args],
                stdout=sink,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=self.env,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
        child = Child(name, process, log_path)
        self.children.append(child)
        log.info("started %s (pid %d), log %s", name, process.pid, log_path)
        return child

    def wait_until(self, child: Child, ready: Callable[[], bool], *, what: str, timeout: float) -> None:
        """Poll ``ready`` until true; fail with the child's log when it exits or the time runs out."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not child.running():
                raise ChildFailedError(f"{child.name} exited with code {child.process.returncode}:\n{child.log_tail()}")
            with contextlib.suppress(Exception):
                if ready():
                    return
            time.sleep(0.25)
        raise ChildFailedError(f"{child.name} was not {what} after {timeout:.0f} s:\n{child.log_tail()}")

    def stop_all(self, grace_s: float = 20.0) -> None:
        """SIGTERM each child (newest first) and wait; SIGKILL what is still running after the grace period."""
        for child in reversed(self.children):
            if child.running():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(child.process.pid, signal.SIGTERM)
                try:
                    child.process.wait(timeout=grace_s)
                except subprocess.TimeoutExpired:
                    log.warning("%s did not stop within %.0f s: killing it", child.name, grace_s)
                    child.process.kill()
                    child.process.wait()
        self.children.clear()
