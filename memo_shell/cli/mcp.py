"""``memo-shell mcp``: serve the memory to MCP clients (Claude Desktop, Cursor, VS Code, oterm).

stdio by default: the client starts ``memo-shell mcp`` and speaks JSON-RPC on its stdin and
stdout, so nothing else may ever be written to stdout (notes go to stderr). ``--http`` serves
streamable HTTP instead, on a loopback address only: the memory is private, and MCP's HTTP
transport has no authentication of its own here.
"""

from __future__ import annotations

import click

from memo_shell.cli.context import CliContext

DEFAULT_PORT = 8765


@click.command("mcp")
@click.option("--http", "use_http", is_flag=True, help="Serve streamable HTTP instead of stdio.")
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address for --http; loopback only (127.0.0.1, ::1, localhost).",
)
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=DEFAULT_PORT,
    show_default=True,
    help="Port for --http (0: any free port; the URL is printed on stderr).",
)
@click.pass_obj
def mcp(ctx: CliContext, use_http: bool, host: str, port: int) -> None:
    """Serve your memories as MCP tools: remember, recall, forget, list, pin, unpin.

    Tools write memories with provenance "tool" and the client's name, so the app quotes
    them as data and you can see (and prune) what each client stored.
    """
    from memo_shell.mcp import build_server
    from memo_shell.serve.listen import bind, is_loopback, serve, url_of

    sock = None
    if use_http:
        if not is_loopback(host):
            raise click.ClickException(
                f"memo-shell mcp --http listens on loopback only (127.0.0.1, ::1, localhost),"
                f" not {host!r}: MCP over HTTP has no authentication here"
            )
        sock = bind(host, port)
    with ctx.open_memories(preload=True) as memories:
        server = build_server(memories)
        if sock is None:
            server.run("stdio")
            return
        # The SDK turns on Host/Origin checks (DNS rebinding protection) for loopback hosts.
        sdk_host = "::1" if ":" in sock.getsockname()[0] else "127.0.0.1"
        app = server.streamable_http_app(host=sdk_host)
        click.echo(f"memo-shell mcp: streamable HTTP at {url_of(sock, '/mcp')}", err=True)
        serve(app, sock)
