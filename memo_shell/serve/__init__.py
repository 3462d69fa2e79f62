"""``memo-shell serve``: a memory proxy speaking the OpenAI and Ollama APIs to any client.

A client pointed at the proxy (an ``openai`` client with ``base_url``, Open WebUI or oterm with
``OLLAMA_HOST``) gets memory with no change of its own: for each chat request the proxy recalls
memories for the latest user message, adds them to the prompt exactly as the app does (quoted
as data, within the model's budget), streams the configured backend's answer back, and stores
the turn. ``X-Memo-Shell-Memory: off`` or a model name ending in ``+nomemory`` makes one call a
plain pass-through (no recall, nothing stored).

Modules: :mod:`~memo_shell.serve.app` (routes, access), :mod:`~memo_shell.serve.turns` (a
request as a memory turn), :mod:`~memo_shell.serve.upstream` (the backend behind),
:mod:`~memo_shell.serve.openai_api` and :mod:`~memo_shell.serve.ollama_api` (the wire
formats), :mod:`~memo_shell.serve.http` (bodies, headers, streaming), and
:mod:`~memo_shell.serve.listen` (sockets).
"""

from memo_shell.serve.app import Proxy, create_app

__all__ = ["Proxy", "create_app"]
