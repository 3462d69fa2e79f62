"""The recalled-memories side panel: what memory contributed to the current turn, and why.

Each recalled memory shows its score, the reasons recall gave (shared entities, matched terms,
similarity, pinned), its date and session, both sides marked by who said them (the user's
statement or question, the model's claim), and whether it made it into the prompt (and if not,
why: too weak to count as evidence, or no room). Actions
(open, pin, forget) are posted as messages: the chat screen owns the store calls.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.content import Content
from textual.message import Message
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from memo_shell.tui import fmt, keymap

if TYPE_CHECKING:
    from memo_shell.api import Hit


def _asks(text: str) -> bool:
    """The user's side is a question (no fact in it) rather than a statement."""
    return text.rstrip().endswith("?")


def hit_prompt(rank: int, hit: Hit, included: bool, left_out: str = "") -> Content:
    """The multi-line entry for one recalled memory; ``#rank`` is what reasons refer to.

    Both sides show, marked by who said them: what the user stated is evidence, what the user
    asked is not a fact, and the model's reply is a claim (possibly wrong), so a wrong answer
    recalled into the prompt is visible as such.
    """
    memory = hit.memory
    head: list[tuple[str, str] | str] = [
        (f"#{rank} ", "bold $text-muted"),
        (f"{hit.score:.2f}", "bold $memo-recalled"),
        "  ",
        (fmt.when(memory.created_at), "$text-muted"),
        "  ",
        (memory.session, "$text-secondary"),
    ]
    if memory.pinned:
        head += ["  ", ("★ pinned", "$warning")]
    if str(memory.provenance) != "typed":
        head += ["  ", (str(memory.provenance), "$text-warning")]
    if memory.meta.get("edited"):
        head += ["  ", ("edited", "$text-muted")]
    if not included:
        reason = f"not in prompt: {left_out}" if left_out else "not in prompt"
        head += ["  ", (f"({reason})", "$text-muted italic")]
    head += ["  ", ("you asked" if _asks(memory.user) else "you said", "$text-muted")]
    why = " · ".join(hit.why) if hit.why else "recent"
    lines: list[tuple[str, str] | str] = ["\n", (fmt.one_line(memory.user, 90), "$foreground")]
    if memory.assistant:
        lines += [
            "\n",
            ("model: ", "$text-muted"),
            (fmt.one_line(memory.assistant, 70), "$text-muted italic"),
            (" (claim)", "$text-warning"),
        ]
    return Content.assemble(*head, *lines, "\n", ("why: ", "$text-muted"), (why, "$text-accent"))


class RecallPanel(Vertical):
    """Side panel listing the current turn's recalled memories."""

    BINDINGS = keymap.bindings("panel")

    @dataclass
    class Open(Message):
        memory_id: str

    @dataclass
    class Pin(Message):
        memory_id: str
        pinned: bool

    @dataclass
    class Forget(Message):
        memory_id: str

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.hits: list[Hit] = []
        self.included: set[str] = set()
        self.left_out: dict[str, str] = {}
        self.use_memory = True

    def compose(self) -> ComposeResult:
        yield Static("", id="panel-title")
        yield OptionList(id="recalled")
        yield Static("", id="panel-hint")

    def on_mount(self) -> None:
        self._render_title()
        self._render_hint()
        self._render_hits(empty_text="Nothing recalled yet. Ask something.")

    # ----------------------------------------------------------------- state from the screen

    def set_memory_enabled(self, enabled: bool) -> None:
        self.use_memory = enabled
        self._render_title()

    def show_hits(
        self,
        hits: Sequence[Hit],
        included: Sequence[str],
        left_out: Mapping[str, str] | None = None,
    ) -> None:
        self.hits = list(hits)
        self.included = set(included)
        self.left_out = dict(left_out or {})
        self._render_hits(
            empty_text="Nothing recalled for this turn."
            if self.use_memory
            else "Memory was off for this turn."
        )

    def replace_memory(self, memory_id: str, memory: object) -> None:
        """A memory changed (e.g. pinned): redraw its entry in place."""
        from memo_shell.api import Hit

        for i, hit in enumerate(self.hits):
            if hit.memory.id == memory_id:
                self.hits[i] = Hit(memory, hit.score, hit.why)  # type: ignore[arg-type]
        self._render_hits()

    def drop_memory(self, memory_id: str) -> None:
        self.hits = [h for h in self.hits if h.memory.id != memory_id]
        self._render_hits(empty_text="Nothing left recalled for this turn.")

    def focus_list(self) -> None:
        option_list = self.query_one(OptionList)
        option_list.focus()
        if option_list.highlighted is None and self.hits:
            option_list.highlighted = 0

    @property
    def current_id(self) -> str | None:
        option_list = self.query_one(OptionList)
        index = option_list.highlighted
        if index is None or not self.hits:
            return None
        return option_list.get_option_at_index(index).id

    # ----------------------------------------------------------------- rendering

    def _render_title(self) -> None:
        state = "[$success]memory on[/]" if self.use_memory else "[$warning]memory off[/] (ctrl+t)"
        state = f"[b $memo-recalled]Recalled memories[/]  {state}"
        self.query_one("#panel-title", Static).update(Content.from_markup(state))

    def _render_hint(self) -> None:
        hint = "[$text-muted]enter open · p pin · f forget · ctrl+o prompt"
        self.query_one("#panel-hint", Static).update(Content.from_markup(hint))

    def _render_hits(self, empty_text: str = "") -> None:
        option_list = self.query_one(OptionList)
        highlighted = option_list.highlighted
        option_list.clear_options()
        if not self.hits:
            option_list.add_option(Option(Content.styled(empty_text, "$text-muted"), disabled=True))
            return
        for n, hit in enumerate(self.hits):
            if n:
                option_list.add_option(None)  # a rule between memories
            memory_id = hit.memory.id
            entry = hit_prompt(
                n + 1, hit, memory_id in self.included, self.left_out.get(memory_id, "")
            )
            option_list.add_option(Option(entry, id=memory_id))
        if highlighted is not None:
            option_list.highlighted = min(highlighted, option_list.option_count - 1)

    # ----------------------------------------------------------------- actions

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        if event.option.id:
            self.post_message(self.Open(event.option.id))

    def action_open(self) -> None:
        if (memory_id := self.current_id) is not None:
            self.post_message(self.Open(memory_id))

    def action_pin(self) -> None:
        memory_id = self.current_id
        hit = next((h for h in self.hits if h.memory.id == memory_id), None)
        if hit is not None:
            self.post_message(self.Pin(hit.memory.id, not hit.memory.pinned))

    def action_forget(self) -> None:
        if (memory_id := self.current_id) is not None:
            self.post_message(self.Forget(memory_id))
