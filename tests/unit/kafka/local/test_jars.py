"""The jar cache keeps one folder per pinned set, so a changed pom is resolved anew and an old cache is left alone."""

from __future__ import annotations

import logging
import os
import stat
import sys
from pathlib import Path

import pytest

from fraudstream.exceptions import BrokerError
from fraudstream.kafka.local import jars
from fraudstream.kafka.local.jars import KAFKA_VERSION, MARKER, JarCache, pinned_set_id


def fake_maven(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *artifacts: str) -> Path:
    """An ``mvn`` on PATH that 'resolves' the given artifacts (empty jars) and records each call."""
    bin_dir, calls = tmp_path / "bin", tmp_path / "mvn-calls"
    bin_dir.mkdir()
    script = (
        f"#!{sys.executable}\nimport pathlib, sys\n"
        "out = pathlib.Path(next(a for a in sys.argv if a.startswith('-DoutputDirectory=')).split('=', 1)[1])\n"
        "out.mkdir(parents=True)\n"
        f"for name in {list(artifacts)!r}:\n"
        f"    (out / f'{{name}}-{KAFKA_VERSION}.jar').write_bytes(b'jar')\n"
        f"with open({str(calls)!r}, 'a') as calls:\n"
        "    calls.write('called\\n')\n"
    )
    mvn = bin_dir / "mvn"
    mvn.write_text(script)
    mvn.chmod(mvn.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return calls


def old_cache(cache_dir: Path) -> Path:
    """A cache as releases before the tools made it: ``<version>/libs`` with the marker but no kafka-tools jar."""
    libs = cache_dir / KAFKA_VERSION / "libs"
    libs.mkdir(parents=True)
    (libs / f"kafka_2.13-{KAFKA_VERSION}.jar").write_bytes(b"old broker jar")
    (libs / MARKER).write_text('{"kafka_version": "4.4.0", "jars": 1, "bytes": 14}')
    return libs


def test_the_pinned_set_id_follows_the_pom_and_the_version(monkeypatch: pytest.MonkeyPatch) -> None:
    today = pinned_set_id()
    assert len(today) == 12
    assert pinned_set_id() == today  # stable
    assert pinned_set_id("4.5.0") != today
    monkeypatch.setattr(jars, "packaged_pom", lambda: "<project>another pinned set</project>")
    assert pinned_set_id() != today


def test_an_old_cache_is_not_trusted_and_is_left_untouched(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=jars.__name__)
    old = old_cache(tmp_path / "cache")
    before = {path.name: path.read_bytes() for path in old.iterdir()}
    calls = fake_maven(tmp_path, monkeypatch, "kafka_2.13", "kafka-tools")
    cache = JarCache(tmp_path / "cache")

    assert not cache.ready()
    assert cache.older_sets() == [old.resolve()]
    libs = cache.ensure()

    assert libs == cache.libs_dir
    assert libs.name == f"libs-{pinned_set_id()}"
    assert (libs / f"kafka-tools-{KAFKA_VERSION}.jar").is_file()
    assert cache.ready()
    assert {path.name: path.read_bytes() for path in old.iterdir()} == before  # not a byte changed
    assert "older sets stay untouched" in caplog.text
    assert cache.ensure() == libs
    assert calls.read_text().count("called") == 1  # resolved once, then reused


def test_a_resolution_without_the_tools_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_maven(tmp_path, monkeypatch, "kafka_2.13")
    cache = JarCache(tmp_path / "cache")

    with pytest.raises(BrokerError, match=rf"lacks kafka-tools-{KAFKA_VERSION}\.jar"):
        cache.ensure()
    assert not cache.ready()
    assert not cache.libs_dir.exists()


def test_a_folder_without_the_marker_is_replaced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = JarCache(tmp_path / "cache")
    cache.libs_dir.mkdir(parents=True)
    (cache.libs_dir / "half-copied.jar").write_bytes(b"")  # an interrupted copy by some other program
    fake_maven(tmp_path, monkeypatch, "kafka_2.13", "kafka-tools")

    cache.ensure()

    assert cache.ready()
    assert not (cache.libs_dir / "half-copied.jar").exists()
