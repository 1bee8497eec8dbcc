"""Regenerate the README's tool reference from the server's own tool schemas.

    .venv/bin/python docs/generate_tool_reference.py          # rewrite the section in README.md
    .venv/bin/python docs/generate_tool_reference.py --check  # exit 1 if README.md is out of date

tests/test_readme.py runs the check, so the README cannot drift from the tools.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import anyio
from mcp import Client

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
BEGIN, END = "<!-- tools:begin -->", "<!-- tools:end -->"


def _type(schema: dict) -> str:
    if "enum" in schema:
        return " \\| ".join(f"`{v}`" for v in schema["enum"])
    if "anyOf" in schema:
        return " or ".join(_type(s) for s in schema["anyOf"] if s.get("type") != "null") or "any"
    if schema.get("type") == "array":
        return f"list of {_type(schema.get('items', {}))}"
    if "$ref" in schema:
        return schema["$ref"].rsplit("/", 1)[-1]
    if schema.get("format") == "date-time":
        return "datetime"
    kind = schema.get("type", "any")
    if isinstance(kind, list):
        return " or ".join(k for k in kind if k != "null") or "null"
    return kind


async def render() -> str:
    sys.path.insert(0, str(ROOT))
    from mcp_server.app import build_server
    from mcp_server.config import Settings

    with tempfile.TemporaryDirectory() as tmp:
        server = build_server(Settings(database_url=f"sqlite+aiosqlite:///{tmp}/ref.db"))
        async with Client(server) as client:
            tools = (await client.list_tools()).tools
    lines = []
    for tool in tools:
        hints = tool.annotations
        flags = [
            name
            for name, on in (
                ("read-only", hints.read_only_hint),
                ("destructive", hints.destructive_hint),
                ("idempotent", hints.idempotent_hint),
            )
            if on
        ]
        summary = (tool.description or "").strip().split("\n\n")[0].replace("\n", " ")
        lines += [f"### `{tool.name}`", "", summary, ""]
        example = next((p for p in (tool.description or "").split("\n\n") if p.strip().startswith("Example:")), None)
        if example:
            lines += ["```", " ".join(example.split())[len("Example: ") :], "```", ""]
        lines += ["| parameter | type | required | description |", "|---|---|---|---|"]
        required = set(tool.input_schema.get("required", []))
        for name, schema in tool.input_schema["properties"].items():
            default = (
                f" (default `{schema['default']}`)" if "default" in schema and schema["default"] is not None else ""
            )
            bounds = "".join(
                f" {label} {schema[key]}." for key, label in (("minimum", "min"), ("maximum", "max")) if key in schema
            )
            description = (schema.get("description") or "").replace("|", "\\|")
            needed = "yes" if name in required else "no"
            lines.append(f"| `{name}` | {_type(schema)} | {needed} | {description}{default}{bounds} |")
        output = ", ".join(f"`{p}`" for p in (tool.output_schema or {}).get("properties", {}))
        lines += ["", f"Returns: {output}. Hints: {', '.join(flags) or 'writes'}; closed world.", ""]
    return "\n".join(lines).rstrip() + "\n"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()
    text = README.read_text()
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    updated = f"{head}{BEGIN}\n{anyio.run(render)}{END}{tail}"
    if args.check:
        if updated != text:
            print("README.md tool reference is out of date: run docs/generate_tool_reference.py", file=sys.stderr)
            return 1
        return 0
    README.write_text(updated)
    return 0


if __name__ == "__main__":
    sys.exit(main())
