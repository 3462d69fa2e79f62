"""``memo-shell serve``: the memory proxy for OpenAI- and Ollama-protocol clients."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import click

from memo_shell.cli.context import CliContext

if TYPE_CHECKING:
    from memo_shell.config import Settings

DEFAULT_PORT = 11435  # beside Ollama's 11434, so OLLAMA_HOST=127.0.0.1:11435 is easy to type
API_KEY_ENV = "MEMO_SHELL_SERVE_API_KEY"


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=DEFAULT_PORT,
    show_default=True,
    help="Port (0: any free port; the URL is printed on stderr).",
)
@click.option(
    "--session",
    "-s",
    default="serve",
    show_default=True,
    help="Session the proxied turns are stored under (X-Memo-Shell-Session overrides).",
)
@click.option(
    "--allow-remote",
    is_flag=True,
    help="Allow a non-loopback --host (requires --api-key).",
)
@click.option(
    "--api-key",
    envvar=API_KEY_ENV,
    help=f"Require 'Authorization: Bearer KEY' on every request (env {API_KEY_ENV}).",
)
@click.pass_obj
def serve(
    ctx: CliContext,
    host: str,
    port: int,
    session: str,
    allow_remote: bool,
    api_key: str | None,
) -> None:
    """Serve the OpenAI and Ollama APIs with your memory in between.

    Point any client at it: an openai client with base_url=http://127.0.0.1:11435/v1, or
    Open WebUI / oterm with OLLAMA_HOST=127.0.0.1:11435. Each chat turn recalls memories for
    the latest user message, quotes them into the prompt, streams the configured backend's
    answer and stores the turn. Header "X-Memo-Shell-Memory: off" or a model name ending in
    "+nomemory" skips memory for one call.
    """
    from memo_shell.serve import Proxy, create_app
    from memo_shell.serve.listen import bind, is_loopback, url_of
    from memo_shell.serve.listen import serve as run_server
    from memo_shell.wiring import open_memories

    if api_key is not None and not api_key.strip():
        raise click.ClickException("--api-key is empty; give a non-empty key")
    if not is_loopback(host):
        if not allow_remote:
            raise click.ClickException(
                f"refusing to listen on {host!r}: the proxy reads and writes your memories, so it"
                " listens on loopback only unless you pass --allow-remote and --api-key"
            )
        if not api_key:
            raise click.ClickException(
                f"--allow-remote needs an API key (--api-key or {API_KEY_ENV}); every request"
                " must then carry it as 'Authorization: Bearer KEY'"
            )
    # Choose the backend once up front: a choice that cannot work (no openai_base_url, a GGUF
    # that is not a model) is one sentence here, not a traceback from the server's start-up.
    asyncio.run(_check_backend(ctx.settings))
    sock = bind(host, port)
    url = url_of(sock)
    proxy = Proxy(ctx.settings, session=session, api_key=api_key, allow_remote=allow_remote)

    # Opened here, not in the server's start-up, so an unusable data directory is one sentence;
    # the app closes it at shutdown.
    memories = open_memories(ctx.settings, preload=True)
    warning = memories.permission_problem()
    if warning:
        click.echo(f"warning: {warning}", err=True)

    def announce(reason: str) -> None:
        click.echo(f"memo-shell serve: {reason}", err=True)
        click.echo(
            f"memo-shell serve: listening on {url} (OpenAI API at {url}/v1, Ollama API at {url})",
            err=True,
        )

    try:
        run_server(create_app(proxy, lambda: memories, announce=announce), sock)
    finally:
        memories.close()  # idempotent: the app's shutdown closed it already if it started


async def _check_backend(settings: Settings) -> None:
    """Raises BackendError (one sentence) if the configured backend cannot work at all."""
    from memo_shell.backends import choose_backend

    choice = await choose_backend(settings)
    await choice.backend.aclose()
