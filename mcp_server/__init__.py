"""agent-memory-mcp's protocol surface: the MCP server, its CLI and configuration."""
