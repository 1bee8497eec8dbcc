"""The floor for the benchmarks: a bare MCPServer with one no-op tool and nothing else.

    python bench/noop_server.py                     # stdio
    python bench/noop_server.py --http --port 8790  # streamable HTTP on 127.0.0.1:8790/mcp

Every benchmark in bench/ measures this server the same way, in the same run, as agent-memory-mcp, and reports
ratios against it: what the SDK, the transport and the Python start-up cost is not ours to optimise.
"""

from __future__ import annotations

import argparse

from mcp.server.mcpserver import MCPServer


def build() -> MCPServer:
    server = MCPServer(name="noop")

    @server.tool()
    def noop(text: str = "") -> str:
        """Do nothing and answer 'ok' (the argument is accepted so calls carry a payload like real tools)."""
        return "ok"

    return server


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--http", action="store_true", help="serve streamable HTTP instead of stdio")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8790)
    args = parser.parse_args(argv)
    server = build()
    if args.http:
        # Same stack as agent-memory-mcp's HTTP mode: uvicorn + the SDK's streamable HTTP app (stateful sessions).
        import uvicorn

        app = server.streamable_http_app(host=args.host)
        uvicorn.run(app, host=args.host, port=args.port, log_level="warning", lifespan="on")
    else:
        server.run("stdio")


if __name__ == "__main__":
    main()
