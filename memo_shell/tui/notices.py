"""The library's warnings, shown as notifications while the app owns the terminal.

The store and the index speak through the ``memo_shell`` logger (e.g. "waiting for another
memo-shell process (pid 4242) to finish updating the index…" when a CLI import holds a lock).
On the command line Python prints those to stderr; under the app, stderr is captured by Textual
and a printed line would never be seen, so while the app runs they become toasts instead.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

LOGGER = "memo_shell"


class NotifyHandler(logging.Handler):
    """Turns warnings from any thread (lock waits happen in worker threads) into toasts."""

    def __init__(self, app: Any) -> None:
        super().__init__(logging.WARNING)
        self.app = app

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        severity = "error" if record.levelno >= logging.ERROR else "warning"
        try:
            if threading.get_ident() == getattr(self.app, "_thread_id", None):
                self.app.notify(message, title="memo-shell", severity=severity)
            else:
                self.app.call_from_thread(
                    self.app.notify, message, title="memo-shell", severity=severity
                )
        except Exception:  # the app has stopped: nobody is looking at the screen any more
            pass


def attach(app: Any) -> NotifyHandler:
    handler = NotifyHandler(app)
    logging.getLogger(LOGGER).addHandler(handler)
    return handler


def detach(handler: NotifyHandler) -> None:
    logging.getLogger(LOGGER).removeHandler(handler)
