"""``memo-shell mcp``: the memory as an MCP server (tools and resources) for any MCP client.

    from memo_shell.mcp import build_server
    server = build_server(memories)      # an MCPServer; server.run("stdio")

See :mod:`memo_shell.mcp.server` for the wiring and :mod:`memo_shell.mcp.tools` for what each
tool does.
"""

from memo_shell.mcp.server import build_server

__all__ = ["build_server"]
