"""The programs the local broker needs on PATH: ``java`` to run it, ``mvn`` to fetch its jars once."""

from __future__ import annotations

import re
import shutil
import subprocess

from fraudstream.exceptions import ToolMissingError

MIN_JAVA = 17
INSTALL_JAVA = "install Java 17+ (e.g. `apt install openjdk-17-jre-headless` or `brew install openjdk@17`)"
INSTALL_MAVEN = "install Maven 3.6+ (e.g. `apt install maven` or `brew install maven`)"
OR_EXTERNAL = "or set FRAUD_KAFKA_BOOTSTRAP to an existing cluster"


def require_tool(name: str) -> str:
    """The path of ``java`` or ``mvn``; ToolMissingError saying what to install when it is not on PATH."""
    path = shutil.which(name)
    if path:
        return path
    what = INSTALL_JAVA if name == "java" else INSTALL_MAVEN
    purpose = "runs the local Kafka broker" if name == "java" else "fetches the local Kafka broker's jars once"
    raise ToolMissingError(f"`{name}` not found on PATH ({name} {purpose}): {what}, {OR_EXTERNAL}")


def java_major_version(java: str) -> int | None:
    """The major version of a ``java`` binary (8 for 1.8), or None when its banner cannot be read."""
    try:
        result = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.search(r'version "(\d+)(?:\.(\d+))?', result.stderr + result.stdout)
    if not match:
        return None
    major = int(match.group(1))
    return int(match.group(2) or 0) if major == 1 else major
