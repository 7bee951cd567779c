"""The local broker's jars: resolved from Maven Central by ``mvn`` once into a cache folder, then reused offline."""

from __future__ import annotations

import json
import logging
import re
import shutil
import subprocess
import tempfile
from collections import deque
from collections.abc import Callable
from importlib import resources
from pathlib import Path

from fraudstream.exceptions import BrokerError
from fraudstream.kafka.local.prerequisites import require_tool

log = logging.getLogger(__name__)

KAFKA_VERSION = "4.4.0"
"""The Kafka release the local broker runs; equal to ``kafka.version`` in the packaged pom.xml."""

Progress = Callable[[str], None]
"""Receives short status lines ("downloaded 12 files ...") while slow steps run; the CLI shows them."""

MARKER = ".fraudstream-complete"


class JarCache:
    """``<cache_dir>/<kafka version>/libs``: complete or absent, never half-filled."""

    def __init__(self, cache_dir: Path, kafka_version: str = KAFKA_VERSION) -> None:
        self.cache_dir = Path(cache_dir).expanduser().resolve()
        self.kafka_version = kafka_version

    @property
    def libs_dir(self) -> Path:
        return self.cache_dir / self.kafka_version / "libs"

    def ready(self) -> bool:
        """True when the jars were resolved completely before (no network needed)."""
        return (self.libs_dir / MARKER).is_file()

    def ensure(self, progress: Progress | None = None) -> Path:
        """Resolve the broker's jars with Maven once (about a minute, 43 MB), then reuse them; returns the folder.

        Maven writes into a temporary folder that is renamed into place only when complete, so an interrupted
        download never leaves a half-filled cache behind.
        """
        if self.ready():
            return self.libs_dir
        require_tool("java")  # Maven itself runs on Java
        mvn = require_tool("mvn")
        version_dir = self.libs_dir.parent
        version_dir.mkdir(parents=True, exist_ok=True)
        log.info("resolving Kafka %s jars with Maven into %s (first run only)", self.kafka_version, self.libs_dir)
        work = Path(tempfile.mkdtemp(prefix=".resolve-", dir=version_dir))
        try:
            resolved = self._run_maven(mvn, work, progress or ignore)
            self._publish(resolved)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        return self.libs_dir

    def _run_maven(self, mvn: str, work: Path, progress: Progress) -> Path:
        pom = work / "pom.xml"
        pom.write_text(resources.files(__package__).joinpath("pom.xml").read_text(encoding="utf-8"))
        out = work / "libs"
        command = [
            mvn, "-B", "-Dstyle.color=never", "-f", str(pom), "dependency:copy-dependencies",
            f"-DoutputDirectory={out}", "-DincludeScope=runtime", f"-Dkafka.version={self.kafka_version}",
        ]  # fmt: skip
        last_lines: deque[str] = deque(maxlen=30)
        downloads = 0
        with subprocess.Popen(
            command, cwd=work, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        ) as maven:
            assert maven.stdout is not None
            for line in maven.stdout:
                last_lines.append(line.rstrip())
                if "Downloaded from" in line:
                    downloads += 1
                    progress(f"Maven: downloaded {downloads} files ({_artifact(line)})")
                elif "Copying " in line:
                    progress(f"Maven: copying {_artifact(line)}")
        if maven.returncode != 0:
            raise BrokerError(
                f"mvn could not resolve the Kafka {self.kafka_version} jars (exit {maven.returncode}); check access "
                "to Maven Central (or a mirror in ~/.m2/settings.xml). Last lines of mvn:\n" + "\n".join(last_lines)
            )
        jars = sorted(out.glob("*.jar"))
        if not any(jar.name == f"kafka_2.13-{self.kafka_version}.jar" for jar in jars):
            raise BrokerError(f"mvn finished but {out} lacks kafka_2.13-{self.kafka_version}.jar")
        size = sum(jar.stat().st_size for jar in jars)
        (out / MARKER).write_text(json.dumps({"kafka_version": self.kafka_version, "jars": len(jars), "bytes": size}))
        log.info("resolved %d jars (%.0f MB) for Kafka %s", len(jars), size / 1e6, self.kafka_version)
        return out

    def _publish(self, resolved: Path) -> None:
        """Rename the complete folder into place; when another process won the race, keep theirs."""
        if self.libs_dir.exists() and not self.ready():
            shutil.rmtree(self.libs_dir)  # a folder without the marker is not ours to trust
        try:
            resolved.rename(self.libs_dir)
        except OSError:
            if not self.ready():
                raise


def _artifact(line: str) -> str:
    """The file name in a Maven 'Downloaded from ...' or 'Copying ...' line."""
    match = re.search(r"([\w.+-]+\.(?:jar|pom))\b", line)
    return match.group(1) if match else line.strip()[-60:]


def ignore(_: str) -> None:
    """A progress callback that shows nothing."""
