"""A one-line footer of the keys that work right now; click a key to press it.

Textual's ``Footer`` builds one widget per key and rebuilds them all whenever focus moves, which
costs hundreds of milliseconds on a screen with many bindings. This bar is a single widget that
re-renders one line of text instead, so changing screens or focus stays instant.
"""

from __future__ import annotations

from textual import events
from textual.binding import ActiveBinding
from textual.content import Content
from textual.screen import Screen
from textual.widget import Widget

from memo_shell.tui import keymap


class KeyBar(Widget):
    """The shown bindings of the focused widget, its screen and the app, in that order."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._spans: list[tuple[int, int, str]] = []  # (start, end, key) for clicks

    def on_mount(self) -> None:
        self.screen.bindings_updated_signal.subscribe(self, self._bindings_changed)

    def on_unmount(self) -> None:
        self.screen.bindings_updated_signal.unsubscribe(self)

    def _bindings_changed(self, screen: Screen[object]) -> None:
        self.refresh()

    def _entries(self) -> list[ActiveBinding]:
        """Shown bindings, one per action: the screen's in keymap order, then the app's."""
        order = {k.id: (k.scope == "app", n) for n, k in enumerate(keymap.KEYS)}
        seen: set[str] = set()
        entries = []
        for entry in self.screen.active_bindings.values():
            binding = entry.binding
            if binding.show and binding.action not in seen:
                seen.add(binding.action)
                entries.append(entry)
        return sorted(entries, key=lambda e: order.get(e.binding.id or "", (True, 999)))

    def render(self) -> Content:
        app = self.app
        width = self.size.width or 200
        entries = self._entries()
        palette = None
        if app.ENABLE_COMMAND_PALETTE:
            palette = self.screen.active_bindings.get(app.COMMAND_PALETTE_BINDING)
            entries = [e for e in entries if e is not palette]
        # F1 and the palette are always shown: on a narrow terminal they are how the rest is found
        kept = [e for e in entries if e.binding.action == "help"][:1]
        entries = [e for e in entries if e not in kept]
        cells = [self._cell(e) for e in entries]
        tail = [self._cell(e) for e in kept]
        if palette is not None:
            tail.append(self._cell(palette))
        room = width - sum(len(k) + len(d) for k, d, _s, _e in tail)
        while cells and sum(len(k) + len(d) for k, d, _s, _e in cells) > room:
            cells.pop()  # the least important (app-wide) keys go first; F1 lists them all
        cells += tail
        parts: list[tuple[str, str]] = []
        spans: list[tuple[int, int, str]] = []
        x = 0
        for key, label, style, first_key in cells:
            parts += [
                (key, f"bold $footer-key-foreground{style}"),
                (label, f"$footer-description-foreground{style}"),
            ]
            spans.append((x, x + len(key) + len(label), first_key))
            x += len(key) + len(label)
        self._spans = spans
        return Content.assemble(*parts)

    def _cell(self, entry: ActiveBinding) -> tuple[str, str, str, str]:
        binding = entry.binding
        key = f" {self.app.get_key_display(binding)} "
        return (
            key,
            f"{binding.description} ",
            "" if entry.enabled else " dim",
            (binding.key.split(",")[0]),
        )

    def on_click(self, event: events.Click) -> None:
        for start, end, key in self._spans:
            if start <= event.x < end:
                event.stop()
                self.app.simulate_key(key)
                return
