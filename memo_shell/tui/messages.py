"""What the runtime tells the app: store, index, backend and memory changes, as messages.

The runtime posts them to the app from workers and threads (posting a Textual message is
thread-safe); the app hands each to its screens, and the screens that show that state update
themselves. Nothing polls. They do not bubble: the app routes them down, once.
"""

from __future__ import annotations

from typing import Any

from textual.message import Message


class RuntimeMessage(Message, bubble=False):
    """Something the screens may show has changed (the runtime holds the new state)."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        # Textual resets ``bubble`` to True for every subclass unless told otherwise; a routed
        # message that bubbled back up to the app would be routed again
        kwargs.setdefault("bubble", False)
        super().__init_subclass__(**kwargs)


class StoreOpened(RuntimeMessage):
    """The data directory is open; the index keeps loading in the background."""


class StoreFailed(RuntimeMessage):
    """The data directory could not be opened (the app has said why)."""

    def __init__(self, error: str) -> None:
        super().__init__()
        self.error = error


class IndexChanged(RuntimeMessage):
    """The index changed state (loading → ready) or has something to report (a notice)."""

    def __init__(self, state: str) -> None:
        super().__init__()
        self.state = state


class BackendPreparing(RuntimeMessage):
    """A model is being looked for or loaded; ``label`` says what is happening (None: no more)."""

    def __init__(self, label: str | None, fraction: float | None = None) -> None:
        super().__init__()
        self.label = label
        self.fraction = fraction


class BackendReady(RuntimeMessage):
    """A backend answers from now on."""

    def __init__(self, name: str, model: str) -> None:
        super().__init__()
        self.name = name
        self.model = model


class BackendFailed(RuntimeMessage):
    """No backend could be chosen, or its model failed to load."""

    def __init__(self, error: str) -> None:
        super().__init__()
        self.error = error


class SessionChanged(RuntimeMessage):
    """New turns go to session ``name`` (switched, started or renamed)."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name


class MemoriesChanged(RuntimeMessage):
    """Memories were written, restored or moved (``ids``: which, when known)."""

    def __init__(self, ids: tuple[str, ...] = ()) -> None:
        super().__init__()
        self.ids = ids


class MemoriesForgotten(MemoriesChanged):
    """Memories were forgotten (their files are gone)."""
