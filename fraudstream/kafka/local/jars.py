"""The local Kafka's jars: resolved from Maven Central by ``mvn`` once into a cache folder, then reused offline.

The packaged ``pom.xml`` pins what is resolved (the broker, Kafka's command-line tools, the logging binding).
Each pinned set gets a folder of its own, named by a hash of that pom and the Kafka version: when a release of
fraudstream changes the pom, the next start resolves the new set beside the old one instead of trusting a cache
that lacks jars, and never rewrites a folder that a running broker may be loading classes from.
"""

from __future__ import annotations

import hashlib
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
REQUIRED_JARS = ("kafka_2.13", "kafka-tools")
"""Artifacts a resolved set must hold (the broker and the tools) before it is published."""


def packaged_pom() -> str:
    return resources.files(__package__).joinpath("pom.xml").read_text(encoding="utf-8")


def pinned_set_id(kafka_version: str = KAFKA_VERSION) -> str:
    """12 hex digits naming the jar set the packaged pom resolves for ``kafka_version``."""
    digest = hashlib.sha256(f"{kafka_version}\n{packaged_pom()}".encode())
    return digest.hexdigest()[:12]


class JarCache:
    """``<cache_dir>/<kafka version>/libs-<pinned set id>``: complete or absent, never half-filled."""

    def __init__(self, cache_dir: Path, kafka_version: str = KAFKA_VERSION) -> None:
        self.cache_dir = Path(cache_dir).expanduser().resolve()
        self.kafka_version = kafka_version
        self.set_id = pinned_set_id(kafka_version)

    @property
    def libs_dir(self) -> Path:
        return self.cache_dir / self.kafka_version / f"libs-{self.set_id}"

    def ready(self) -> bool:
        """True when this pinned set was resolved completely before (no network needed)."""
        return (self.libs_dir / MARKER).is_file()

    def ensure(self, progress: Progress | None = None) -> Path:
        """Resolve the jars with Maven once (about a minute and 55 MB from nothing), then reuse them.

        Maven writes into a temporary folder that is renamed into place only when complete, so an interrupted
        download never leaves a half-filled cache behind. Older sets are left where they are.
        """
        if self.ready():
            return self.libs_dir
        require_tool("java")  # Maven itself runs on Java
        mvn = require_tool("mvn")
        version_dir = self.libs_dir.parent
        version_dir.mkdir(parents=True, exist_ok=True)
        older = self.older_sets()
        if older:
            log.info(
                "the jar set pinned by this release is not cached yet; older sets stay untouched in %s "
                "(delete them once no broker runs from them)",
                ", ".join(str(path) for path in older),
            )
        log.info("resolving Kafka %s jars with Maven into %s (once per pinned set)", self.kafka_version, self.libs_dir)
        work = Path(tempfile.mkdtemp(prefix=".resolve-", dir=version_dir))
        try:
            resolved = self._run_maven(mvn, work, progress or ignore)
            self._publish(resolved)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        return self.libs_dir

    def older_sets(self) -> list[Path]:
        """Jar folders of this Kafka version resolved from another pom (``libs`` is the layout before sets)."""
        version_dir = self.libs_dir.parent
        if not version_dir.is_dir():
            return []
        return sorted(
            path
            for path in version_dir.iterdir()
            if path.is_dir() and path.name.startswith("libs") and path != self.libs_dir
        )

    def _run_maven(self, mvn: str, work: Path, progress: Progress) -> Path:
        pom = work / "pom.xml"
        pom.write_text(packaged_pom(), encoding="utf-8")
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
        names = {jar.name for jar in jars}
        missing = [f"{name}-{self.kafka_version}.jar" for name in REQUIRED_JARS]
        missing = [name for name in missing if name not in names]
        if missing:
            raise BrokerError(f"mvn finished but {out} lacks {', '.join(missing)}")
        size = sum(jar.stat().st_size for jar in jars)
        marker = {"kafka_version": self.kafka_version, "pinned_set": self.set_id, "jars": len(jars), "bytes": size}
        (out / MARKER).write_text(json.dumps(marker))
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
