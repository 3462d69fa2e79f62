"""The message box: a multi-line TextArea where Enter sends and ctrl+j adds a line.

TextArea inserts a newline on Enter before any binding sees the key, so the composer lets Enter
bubble to the bindings instead: whatever the keymap says Enter does (by default ``send``) wins,
and a user who remaps ``composer.send`` to another key gets Enter back as a newline.
"""

from __future__ import annotations

from dataclasses import dataclass

from textual import events
from textual.message import Message
from textual.widgets import TextArea

from memo_shell.tui import keymap

#: A paste this long is almost always a document; say what will happen to it.
LONG_PASTE_CHARS = 10_000


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
            placeholder="Ask anything… (enter sends, ctrl+j new line, F1 help)",
            highlight_cursor_line=False,
        )

    # Textual calls the handler of every class in the MRO (subclass first) unless one of them
    # prevents the default, so these run *before* TextArea's own and need not call super().

    def _on_key(self, event: events.Key) -> None:
        if event.key == "enter":
            # Keep TextArea from inserting a newline and let the keymap decide: `send` by
            # default, `newline` if the user remapped the keys.
            event.prevent_default()

    def _on_paste(self, event: events.Paste) -> None:
        if len(event.text) >= LONG_PASTE_CHARS:
            self.notify(
                f"Pasted {len(event.text) / 1000:.0f} kB. Long messages are shortened on screen; "
                "if one is more than the model's context holds, you are told before anything "
                "is sent.",
                title="Long paste",
            )

    def action_send(self) -> None:
        text = self.text.strip()
        if text:
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
