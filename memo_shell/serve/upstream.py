"""The model server behind the proxy, through memo-shell's own backend layer.

The backend is chosen once at start-up, as the app chooses it (``--backend``, ``--model``,
``auto``); a request naming another model gets a backend of the same kind for that model
(made once, then kept). The proxy's model list is the upstream's, so a request for a model the
upstream does not list is refused with the protocol's "model not found" before anything is
sent; the listing is cached briefly because it sits in front of every first token.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import TYPE_CHECKING

from memo_shell.backends import choose_backend
from memo_shell.backends.ollama import same_model
from memo_shell.errors import BackendError
from memo_shell.serve.errors import ProxyError, model_missing

if TYPE_CHECKING:
    from memo_shell.backends.base import Backend, ModelInfo
    from memo_shell.config import Settings

#: Seconds a model listing is trusted; a miss always re-reads it once before refusing.
LISTING_TTL_S = 5.0


class Upstream:
    """Backends for the models of one upstream (Ollama, an OpenAI-compatible server, llama.cpp)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.base: Backend | None = None
        self.reason = ""
        self._backends: dict[str, Backend] = {}
        self._listing: list[ModelInfo] = []
        self._listed_at = -LISTING_TTL_S
        self._lock = asyncio.Lock()

    async def start(self) -> str:
        """Choose the backend (may probe servers or assemble the embedded model)."""
        choice = await choose_backend(self.settings)
        self.base = choice.backend
        self.reason = choice.reason
        return choice.reason

    @property
    def kind(self) -> str:
        assert self.base is not None, "Upstream.start() was not awaited"
        return self.base.name

    @property
    def where(self) -> str:
        base = self.base
        return str(getattr(base, "url", None) or getattr(base, "path", None) or self.kind)

    async def models(self, *, fresh: bool = False) -> list[ModelInfo]:
        """The upstream's models (cached for LISTING_TTL_S); ProxyError 502 if it is down."""
        assert self.base is not None, "Upstream.start() was not awaited"
        if fresh or time.monotonic() - self._listed_at > LISTING_TTL_S:
            try:
                self._listing = await self.base.models()
            except BackendError as exc:  # down or not the right server: the gateway's error
                raise ProxyError(502, str(exc), "upstream_error") from None
            self._listed_at = time.monotonic()
        return self._listing

    async def _listed(self, model: str) -> bool:
        if any(same_model(m.name, model) for m in await self.models()):
            return True
        return any(same_model(m.name, model) for m in await self.models(fresh=True))

    async def backend_for(self, model: str) -> Backend:
        """The backend serving ``model``; ProxyError 404 if the upstream does not have it."""
        assert self.base is not None, "Upstream.start() was not awaited"
        found = self._backends.get(model)
        if found is not None:
            return found
        if not await self._listed(model):
            raise model_missing(model, self.where)
        async with self._lock:
            found = self._backends.get(model)
            if found is not None:
                return found
            if self.base.model and same_model(self.base.model, model):
                backend = self.base
            elif not self.base.model:  # a server whose default model was never resolved
                self.base.model = model
                backend = self.base
            else:
                try:
                    choice = await choose_backend(
                        self.settings.with_overrides(backend=self.kind, model=model)
                    )
                except BackendError as exc:
                    raise ProxyError(404, str(exc), "model_not_found", "model") from None
                backend = choice.backend
            self._backends[model] = backend
            return backend

    async def aclose(self) -> None:
        backends = {id(b): b for b in [self.base, *self._backends.values()] if b is not None}
        for backend in backends.values():
            with contextlib.suppress(Exception):  # closing is best effort at shutdown
                await backend.aclose()
