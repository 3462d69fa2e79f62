"""The message box: a multi-line TextArea where Enter sends and ctrl+j adds a line.

The send and new-line keys (after the user's remapping) are handled in the key handler itself,
like ordinary characters, not as bindings: a binding's action runs only once the key has
bubbled up to the app, after characters queued behind it, so "X", ctrl+j, "Y" arriving in one
read from the terminal came out as "XY⏎". A user who remaps ``composer.send`` to another key
gets Enter back as a newline (TextArea's own behaviour).

↑ on the first line (↓ on the last) walks the questions asked earlier in the session, as a
shell does; a draft typed before walking is kept and comes back at the end of the walk.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from textual import events
from textual.message import Message
from textual.widgets import TextArea

from memo_shell.tui import keymap

#: A paste this long is almost always a document; say what will happen to it.
LONG_PASTE_CHARS = 10_000
#: Questions kept for ↑/↓ (older ones are still in memory, through recall and F3).
HISTORY_SIZE = 200


def _keys(binding_id: str, overrides: Mapping[str, str]) -> frozenset[str]:
    return frozenset(
        k.strip() for k in keymap.effective_key(keymap.BY_ID[binding_id], overrides).split(",")
    )


class Composer(TextArea):
    """Where the user writes. Posts ``Composer.Submitted``; never clears text it did not send."""

    BINDINGS = keymap.bindings("composer")

    @dataclass
    class Submitted(Message):
        """The user asked to send ``text`` (already stripped, never empty)."""

        composer: Composer
        text: str

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(
            id=id,
            soft_wrap=True,
            show_line_numbers=False,
            tab_behavior="focus",
            compact=True,
            placeholder="Ask anything… (enter sends, ctrl+j new line, ↑ earlier questions)",
            highlight_cursor_line=False,
        )
        self.questions: list[str] = []
        self._walk: int | None = None  # position in ``history`` while walking it
        self._draft = ""
        self.use_keymap({})

    def use_keymap(self, overrides: Mapping[str, str]) -> None:
        """Take the send and new-line keys from the keymap with the user's remapping."""
        self.send_keys = _keys("composer.send", overrides)
        self.newline_keys = _keys("composer.newline", overrides) - self.send_keys

    def on_mount(self) -> None:
        self.use_keymap(getattr(self.app, "key_overrides", {}))

    # Textual calls the handler of every class in the MRO (subclass first) unless one of them
    # prevents the default, so these run *before* TextArea's own and need not call super(). They
    # are coroutines as TextArea's are (Textual awaits each before the next).

    async def _on_key(self, event: events.Key) -> None:
        if event.key in self.send_keys:
            event.prevent_default()
            event.stop()
            self.action_send()
        elif event.key in self.newline_keys:
            event.prevent_default()
            event.stop()
            self.action_newline()
        elif self._walks(event.key):
            event.prevent_default()
            event.stop()

    def _walks(self, key: str) -> bool:
        """↑ on the first line, or ↓ on the last while walking: step through the questions."""
        row = self.cursor_location[0]
        if key == "up" and row == 0:
            return self._step(-1)
        if key == "down" and self._walk is not None and row == self.document.line_count - 1:
            return self._step(1)
        return False

    async def _on_paste(self, event: events.Paste) -> None:
        if len(event.text) >= LONG_PASTE_CHARS:
            self.notify(
                f"Pasted {len(event.text) / 1000:.0f} kB. Long messages are shortened on screen; "
                "if one is more than the model's context holds, you are told before anything "
                "is sent.",
                title="Long paste",
            )

    # ----------------------------------------------------------------- history

    def set_history(self, questions: Iterable[str]) -> None:
        """The session's earlier questions, oldest first (replaces any walk in progress)."""
        self.questions = list(questions)[-HISTORY_SIZE:]
        self._walk = None

    def remember(self, question: str) -> None:
        if not self.questions or self.questions[-1] != question:
            self.questions = [*self.questions, question][-HISTORY_SIZE:]
        self._walk = None

    def _step(self, delta: int) -> bool:
        """Show the previous (-1) or next (+1) question; False when there is none."""
        if not self.questions:
            return False
        if self._walk is None:
            if delta > 0:
                return False
            self._draft = self.text
            position = len(self.questions) - 1
        else:
            position = self._walk + delta
        if position < 0:
            return True  # at the oldest: stay (and swallow the key, as shells do)
        if position >= len(self.questions):
            self._walk = None
            self._show(self._draft)
            return True
        self._walk = position
        self._show(self.questions[position])
        return True

    def _show(self, text: str) -> None:
        self.load_text(text)
        self.move_cursor(self.document.end)

    # ----------------------------------------------------------------- actions

    def action_send(self) -> None:
        """Post the text and clear the box at once, so keys typed right after Enter (in the
        same read from the terminal) start the next message instead of being cleared with it.
        A receiver that cannot send it now puts it back (``put_back``)."""
        text = self.text.strip()
        if text:
            self._walk = None
            self.clear()
            self.post_message(self.Submitted(self, text))

    def action_newline(self) -> None:
        self.insert("\n")

    def put_back(self, question: str) -> None:
        """Return an unsent question, keeping anything typed since (nothing typed is lost)."""
        current = self.text
        if current.strip() == question.strip():
            return
        self.load_text(f"{question}\n{current}" if current.strip() else question)
        self.move_cursor(self.document.end)
