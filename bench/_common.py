"""Helpers shared by the benchmarks: spawning servers, timing, percentiles, the machine line, docs sections."""

from __future__ import annotations

import datetime as _dt
import math
import os
import platform
import re
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from mcp.client.stdio import StdioServerParameters

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
DOCS = ROOT / "docs" / "benchmarks.md"
VENV_BIN = Path(sys.executable).parent
OURS = str(VENV_BIN / "agent-memory-mcp")
NOOP = [sys.executable, str(BENCH / "noop_server.py")]
REF_CACHE = Path(os.environ.get("BENCH_REF_CACHE", str(BENCH / ".cache" / "refserver")))
REF_PACKAGE = "@modelcontextprotocol/server-memory"


# --- spawning ------------------------------------------------------------------------------------------------------


def ours_params(database_url: str, *, user: str = "bench@example.com", agent: str = "bench") -> StdioServerParameters:
    return StdioServerParameters(
        command=OURS, args=["--database-url", database_url, "--user", user, "--agent", agent], cwd=str(ROOT)
    )


def noop_params() -> StdioServerParameters:
    return StdioServerParameters(command=NOOP[0], args=NOOP[1:], cwd=str(ROOT))


def ensure_reference_server() -> Path:
    """Install the reference server once into REF_CACHE (outside the package; gitignore bench/.cache)."""
    entry = REF_CACHE / "node_modules" / "@modelcontextprotocol" / "server-memory" / "dist" / "index.js"
    if not entry.exists():
        REF_CACHE.mkdir(parents=True, exist_ok=True)
        if not (REF_CACHE / "package.json").exists():
            (REF_CACHE / "package.json").write_text('{"name": "bench-refserver", "private": true}\n')
        subprocess.run(
            ["npm", "install", "--no-audit", "--no-fund", REF_PACKAGE], cwd=REF_CACHE, check=True,
            stdout=subprocess.DEVNULL,
        )
    return entry


def reference_version() -> str:
    import json

    pkg = REF_CACHE / "node_modules" / "@modelcontextprotocol" / "server-memory" / "package.json"
    return json.loads(pkg.read_text())["version"] if pkg.exists() else "?"


def reference_params(memory_file: Path) -> StdioServerParameters:
    entry = ensure_reference_server()
    return StdioServerParameters(command="node", args=[str(entry)], env={"MEMORY_FILE_PATH": str(memory_file)})


def child_pids() -> list[int]:
    """Direct children of this process (the stdio transport does not expose the server's pid)."""
    me = os.getpid()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        # the command name is in parentheses and may contain spaces
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[1]) == me:
            found.append(int(entry))
    return found


def rss_mb(pid: int | None) -> float | None:
    if pid is None:
        return None
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


# --- the long session ----------------------------------------------------------------------------------------------


HISTORY_PAGE_MAX = 1000  # the largest page get_history serves


def history_cursors(session: Any, session_id: uuid.UUID, user_id: uuid.UUID, count: int) -> dict[str, str]:
    """Real `next_cursor`s into the history of a session of `count` messages, got by walking it newest first with
    the public `get_history_sync` on `session`: "middle" opens the page that starts halfway back, "deepest" the
    last full page of 50 (one older message is left after it)."""
    from repository.messages import get_history_sync

    skips = {"middle": count - (count - 1) // 2, "deepest": count - 51}
    out: dict[str, str] = {}
    cursor: str | None = None
    done = 0
    for name, skip in sorted(skips.items(), key=lambda item: item[1]):
        if skip < 1:
            raise ValueError(f"a session of {count} messages is too short for a {name} page of 50")
        while done < skip:
            take = min(skip - done, HISTORY_PAGE_MAX)
            cursor = get_history_sync(session, session_id, user_id=user_id, limit=take, cursor=cursor).next_cursor
            if cursor is None:
                raise ValueError(f"session {session_id} has fewer than {count} messages")
            done += take
        assert cursor is not None
        out[name] = cursor
    return out


# --- statistics ----------------------------------------------------------------------------------------------------


def pct(values: list[float], q: float) -> float:
    """The q-th percentile (0..100), linear interpolation."""
    if not values:
        return float("nan")
    s = sorted(values)
    if len(s) == 1:
        return s[0]
    k = (len(s) - 1) * q / 100
    lo = int(k)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def summary(samples_s: list[float]) -> dict[str, float]:
    ms = [x * 1000 for x in samples_s]
    return {
        "n": len(ms),
        "p50": pct(ms, 50),
        "p95": pct(ms, 95),
        "max": max(ms) if ms else float("nan"),
        "mean": statistics.fmean(ms) if ms else float("nan"),
        "per_s": len(ms) / (sum(samples_s) or float("nan")),
    }


async def timed_calls(n: int, call: Callable[[int], Awaitable[Any]], *, warmup: int = 10) -> list[float]:
    for i in range(warmup):
        await call(-1 - i)
    out = []
    for i in range(n):
        t0 = time.perf_counter()
        await call(i)
        out.append(time.perf_counter() - t0)
    return out


def check(result: Any, what: str) -> Any:
    if getattr(result, "is_error", False):
        text = " ".join(getattr(c, "text", "") for c in result.content)
        raise RuntimeError(f"{what} returned an error: {text}")
    return result


def fmt(x: float | None, digits: int = 1) -> str:
    if x is None or math.isnan(x):
        return "-"
    if abs(x) >= 100:
        return f"{x:,.0f}"
    return f"{x:.{digits}f}"


# --- the report ----------------------------------------------------------------------------------------------------


def machine() -> dict[str, str]:
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        commit = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no", "--", "mcp_server", "repository"],
            capture_output=True, text=True, check=True,
        ).stdout.strip()
        if dirty:
            commit += " (+ uncommitted changes in mcp_server/ or repository/)"
    except (OSError, subprocess.CalledProcessError):
        commit = "?"
    try:
        load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        load = "?"
    return {
        "date": _dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
        "commit": commit,
        "nproc": str(os.cpu_count()),
        "cpu": cpu,
        "python": platform.python_version(),
        "load": load,
    }


def machine_line(m: dict[str, str]) -> str:
    return (
        f"Run {m['date']} at commit `{m['commit']}` on {m['nproc']} cores ({m['cpu']}), Python {m['python']}, "
        f"load average at start {m['load']} (the machine is shared: expect a few percent of noise, more in the tails)."
    )


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


DOC_HEADER = """# Benchmarks

Measured by the scripts in `bench/`; each section says how to reproduce it. Sections are delimited by HTML comments
so each script replaces only its own.
"""


# The hand-written history section stays last: a new script section goes before it.
HISTORY_BEGIN = "<!-- history:begin -->"


def write_section(name: str, body: str) -> None:
    """Replace (or add) the `<!-- name:begin --> ... <!-- name:end -->` section of docs/benchmarks.md."""
    begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    block = f"{begin}\n{body.rstrip()}\n{end}"
    text = DOCS.read_text() if DOCS.exists() else DOC_HEADER
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.DOTALL)
    if pattern.search(text):
        text = pattern.sub(lambda _: block, text, count=1)
    elif HISTORY_BEGIN in text:
        head, _, tail = text.partition(HISTORY_BEGIN)
        text = head.rstrip() + "\n\n" + block + "\n\n" + HISTORY_BEGIN + tail
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    DOCS.parent.mkdir(parents=True, exist_ok=True)
    DOCS.write_text(text)
