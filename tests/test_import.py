"""`agent-memory-mcp import`: bulk-load memories from JSON Lines, then find them through the tools."""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.mcp_helpers import call, connect
from tests.test_e2e import SCRIPT

pytestmark = [pytest.mark.anyio, pytest.mark.slow]  # runs the CLI as a subprocess


def _run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([SCRIPT, "import", *args], input=stdin, capture_output=True, text=True, timeout=120)


async def test_import_then_search_and_rerun_skips_duplicates(database_url, tmp_path):
    lines = [{"content": f"Imported fact number {i} about gardening"} for i in range(12)]
    lines += [
        {"content": "Prefers tea", "name": "drink", "metadata": {"source": "crm"}},
        {"content": "Office closes at 6pm", "scope": "agent"},
    ]
    source = tmp_path / "memories.jsonl"
    source.write_text("\n".join(json.dumps(line) for line in lines) + "\n\n")
    identity = ["--database-url", database_url, "--user", "ada@example.com", "--agent", "tester"]
    first = _run(str(source), *identity)
    assert first.returncode == 0, first.stderr
    assert "read 14, imported 14" in first.stderr and first.stdout == ""
    again = _run(str(source), *identity)
    assert again.returncode == 0 and "read 14, imported 0" in again.stderr

    async with connect(database_url) as client:
        assert (await call(client, "list_memories", limit=100))["total"] == 14
        found = await call(client, "search_memories", query="what does the user like to drink?")
        assert found["results"][0]["name"] == "drink" and found["results"][0]["metadata"] == {"source": "crm"}
        shared = await call(client, "search_memories", query="office hours", scopes=["agent"])
        assert shared["results"][0]["content"] == "Office closes at 6pm"
    async with connect(database_url, user="bob@example.com") as bob:
        # User-scoped imports are private; the agent-wide one is shared.
        assert [r["content"] for r in (await call(bob, "search_memories", query="gardening office"))["results"]] == [
            "Office closes at 6pm"
        ]


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ('{"content": "ok"}\nnot json\n', "line 2: not JSON"),
        ('{"content": ""}\n', "line 1: content"),
        ('{"content": "x", "colour": "red"}\n', "line 1: unknown fields ['colour']"),
        ('{"content": "x", "scope": "session"}\n', "line 1: scope must be"),
        ('["content"]\n', "line 1: expected a JSON object"),
    ],
)
def test_bad_lines_are_reported_by_number(tmp_path, content, problem):
    source = tmp_path / "bad.jsonl"
    source.write_text(content)
    result = _run(str(source), "--database-url", f"sqlite+aiosqlite:///{tmp_path / 'x.db'}")
    assert result.returncode == 1
    assert problem in result.stderr and "Traceback" not in result.stderr


def test_missing_file_is_a_short_error(tmp_path):
    result = _run(str(tmp_path / "nope.jsonl"), "--database-url", f"sqlite+aiosqlite:///{tmp_path / 'x.db'}")
    assert result.returncode == 1 and "cannot read" in result.stderr and "Traceback" not in result.stderr


def test_import_reads_stdin(tmp_path):
    result = _run(
        "-", "--database-url", f"sqlite+aiosqlite:///{tmp_path / 'x.db'}", stdin='{"content": "from a pipe"}\n'
    )
    assert result.returncode == 0 and "read 1, imported 1" in result.stderr
