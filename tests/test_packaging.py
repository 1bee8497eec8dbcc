"""A built wheel carries its migrations: installed anywhere, the console script can create the schema."""

from __future__ import annotations

import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.slow  # builds and installs a wheel


def test_wheel_ships_migrations_and_migrates_from_its_install_location(tmp_path):
    build = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert build.returncode == 0, build.stderr
    wheel = next(tmp_path.glob("agent_memory_mcp-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "migrations/env.py" in names and "migrations/versions/0001_initial.py" in names
    assert "migrations/versions/0002_memory_scope_tokens.py" in names
    assert "migrations/versions/0003_message_body_without_speaker.py" in names
    assert "migrations/versions/0004_gin_pending_list.py" in names
    assert "mcp_server/console/static/app.js" in names and "mcp_server/console/static/index.html" in names
    assert "migrations/versions/0005_message_session_tokens.py" in names
    entry_points = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
    assert "agent-memory-mcp = mcp_server.cli:main" in entry_points

    target = tmp_path / "installed"
    install = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target), str(wheel)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert install.returncode == 0, install.stderr
    # Run from an unrelated directory with only the installed copy (plus the dependencies) importable.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    database = tmp_path / "fresh.db"
    env = {"PYTHONPATH": f"{target}:{sysconfig.get_paths()['purelib']}", "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    code = (
        "import sys, mcp_server, migrations; "
        f"assert mcp_server.__file__.startswith({str(target)!r}), mcp_server.__file__; "
        f"assert migrations.__file__.startswith({str(target)!r}), migrations.__file__; "
        "from mcp_server.cli import main; "
        f"sys.exit(main(['migrate', '--database-url', 'sqlite+aiosqlite:///{database}']))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=elsewhere, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert "schema migrated" in result.stderr
    again = subprocess.run(
        [sys.executable, "-c", code], cwd=elsewhere, env=env, capture_output=True, text=True, timeout=120
    )
    assert again.returncode == 0 and "schema current" in again.stderr
