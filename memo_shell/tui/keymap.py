"""Every key binding as data: an id, a default key, an action and a description.

Widgets and screens build their ``BINDINGS`` from this table, the help screen lists it and the
command palette offers it, so the three can never disagree. Users remap keys by id in the config
file (``[keys]`` table, e.g. ``"browser.forget" = "x"``); Textual's keymap support applies the
remapping to the live bindings (``App.set_keymap``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from textual.binding import Binding, BindingType

#: Scope names, in the order the help screen shows them, with their headings.
SCOPES: dict[str, str] = {
    "app": "Everywhere",
    "composer": "Message box",
    "chat": "Chat",
    "panel": "Recalled memories panel",
    "browser": "Memory browser",
    "table": "Memory table",
    "graph": "Knowledge graph",
    "detail": "Memory details",
    "sessions": "Sessions",
    "dialog": "Dialogs",
}


@dataclass(frozen=True, slots=True)
class Key:
    """One binding. ``id`` is stable (users remap by it); ``key`` is the default."""

    id: str
    key: str
    action: str
    description: str
    show: bool = True
    priority: bool = False
    palette: bool = True  # offered in the command palette (screen-local movement keys are not)
    help: str = ""  # a longer explanation for the help screen

    @property
    def scope(self) -> str:
        return self.id.split(".", 1)[0]

    def binding(self) -> Binding:
        return Binding(
            self.key,
            self.action,
            self.description,
            show=self.show,
            priority=self.priority,
            id=self.id,
            tooltip=self.help or self.description,
        )


KEYS: tuple[Key, ...] = (
    # -- everywhere (priority: they work even while the message box has focus; TextArea itself
    #    binds f6/f7, so without priority those would select text instead)
    Key("app.help", "f1", "help", "Help", priority=True, help="This list of keys"),
    Key("app.help_alt", "question_mark", "help", "Help", show=False, help="When not typing"),
    Key("app.chat", "f2", "open('chat')", "Chat", priority=True, help="Back to the chat"),
    Key("app.browser", "f3", "open('browser')", "Memories", priority=True, help="Browse, prune"),
    Key("app.graph", "f4", "open('graph')", "Graph", priority=True, help="Entities and memories"),
    Key("app.models", "f5", "pick_model", "Model", priority=True, help="Choose backend and model"),
    Key("app.sessions", "f6", "pick_session", "Sessions", priority=True, help="Switch, rename"),
    Key("app.new_session", "ctrl+n", "new_session", "New session", show=False, priority=True),
    Key("app.theme", "f8", "change_theme", "Theme", show=False, priority=True, help="Pick one"),
    Key("app.quit", "ctrl+q", "quit", "Quit", show=False, priority=True),
    # -- the message box (the chat's TextArea)
    Key("composer.send", "enter", "send", "Send", show=False, palette=False),
    Key(
        "composer.newline",
        "ctrl+j,shift+enter,alt+enter",
        "newline",
        "New line",
        show=False,
        palette=False,
        help="ctrl+j works in every terminal; shift+enter where the terminal reports it",
    ),
    # -- chat screen
    Key(
        "chat.cancel",
        "escape",
        "cancel",
        "Cancel",
        help="Stop the reply (the question returns), or stop editing the last question",
    ),
    Key("chat.panel", "ctrl+r", "toggle_panel", "Recalled", help="Show/hide recalled memories"),
    Key(
        "chat.memory",
        "ctrl+t",
        "toggle_memory",
        "Memory",
        help="Cycle memory on → off (no recall; turns still kept) → private (no recall, turns "
        "not kept); stays until pressed again",
    ),
    Key(
        "chat.regenerate",
        "f7",
        "regenerate",
        "Regenerate",
        priority=True,  # TextArea binds f7 (select all) itself
        help="Ask the last question again; the earlier reply is forgotten",
    ),
    Key(
        "chat.edit",
        "f9",
        "edit_last",
        "Edit last",
        help="Put the last question back in the box; sending it replaces that turn",
    ),
    Key("chat.copy", "f10", "copy_reply", "Copy", help="Copy the last reply to the clipboard"),
    Key(
        "chat.copy_code",
        "ctrl+b",
        "copy_code",
        "Copy code",
        show=False,
        help="Copy the last code block of the last reply (again: the one before it)",
    ),
    Key(
        "chat.clear",
        "f12",
        "clear_view",
        "Clear view",
        show=False,
        help="Empty the chat view (nothing is forgotten; F6 starts a new session)",
    ),
    Key("chat.prompt", "ctrl+o", "show_prompt", "Prompt", help="The exact prompt last sent"),
    Key(
        "chat.forget_last",
        "f11",
        "forget_last",
        "Forget last",
        show=False,
        help="Forget the last turn of this chat (asks first)",
    ),
    Key(
        "chat.settings",
        "ctrl+s",
        "session_settings",
        "Session settings",
        show=False,
        help="This session's system prompt, temperature, context size and max tokens",
    ),
    Key("chat.focus_panel", "ctrl+g", "focus_panel", "Go to recalled", show=False),
    Key("chat.focus_input", "ctrl+l", "focus_input", "Go to input", show=False),
    # -- recalled-memories panel (when it has focus)
    Key("panel.open", "enter", "open", "Open", palette=False),
    Key("panel.pin", "p", "pin", "Pin/unpin"),
    Key("panel.forget", "f,delete", "forget", "Forget"),
    # -- memory browser
    Key("browser.search", "slash", "focus_search", "Search", help="Live search (uses recall)"),
    Key("browser.filters", "ctrl+f", "focus_filters", "Filters", help="Session and date filters"),
    Key("browser.open", "enter", "open", "Open", show=False, palette=False),
    Key("browser.forget", "d,delete", "forget_selected", "Forget", help="Forget selected rows"),
    Key("browser.prune", "D", "prune_filter", "Prune filter", help="Forget all (unpinned) shown"),
    Key("browser.undo", "u,ctrl+z", "undo", "Undo", help="Undo the last forget on this screen"),
    Key("browser.pin", "p", "pin", "Pin/unpin"),
    Key("browser.tags", "t", "tags", "Tags", help="Edit the tags of the current memory"),
    Key("browser.sort", "s", "cycle_sort", "Sort", help="Newest, oldest, session, pinned first"),
    Key("browser.back", "escape", "back", "Back", help="Clear search, else back to the chat"),
    # -- the memory table (browser)
    Key("table.select", "space", "toggle_select", "Select", show=False),
    Key("table.select_all", "a", "select_all", "Select all", show=False),
    Key("table.clear", "A", "clear_selection", "Select none", show=False),
    Key("table.up", "up,k", "cursor_up", "Up", show=False, palette=False),
    Key("table.down", "down,j", "cursor_down", "Down", show=False, palette=False),
    Key("table.page_up", "pageup", "page_up", "Page up", show=False, palette=False),
    Key("table.page_down", "pagedown", "page_down", "Page down", show=False, palette=False),
    Key("table.first", "home,g", "first", "First", show=False, palette=False),
    Key("table.last", "end,G", "last", "Last", show=False, palette=False),
    # -- knowledge graph
    Key("graph.filter", "slash", "focus_filter", "Filter", help="Filter entities by name"),
    Key("graph.forget", "d,delete", "forget_entity", "Forget entity", help="Forget its memories"),
    Key("graph.undo", "u,ctrl+z", "undo", "Undo"),
    Key("graph.back", "escape", "back", "Back"),
    # -- memory detail dialog
    Key("detail.pin", "p", "pin", "Pin/unpin"),
    Key("detail.tags", "t", "tags", "Tags"),
    Key("detail.edit", "e", "edit", "Edit", help="Correct what the memory says (either side)"),
    Key("detail.forget", "f,delete", "forget", "Forget"),
    Key("detail.close", "escape", "close", "Close"),
    # -- session picker
    Key("sessions.switch", "enter", "switch", "Switch", palette=False),
    Key("sessions.new", "n", "new", "New"),
    Key("sessions.rename", "r", "rename", "Rename"),
    Key("sessions.close", "escape", "close", "Close"),
    # -- dialogs
    Key("dialog.yes", "y", "yes", "Yes", palette=False),
    Key("dialog.no", "n,escape", "no", "No", palette=False),
    Key("dialog.close", "escape", "close", "Close", palette=False),
    Key("dialog.save", "ctrl+s", "save", "Save", priority=True, palette=False),
)

BY_ID: dict[str, Key] = {k.id: k for k in KEYS}


def bindings(scope: str) -> list[BindingType]:
    """The Textual bindings for one scope (a class's ``BINDINGS``, typed as Textual declares
    it, so a subclass may assign it)."""
    return [k.binding() for k in KEYS if k.scope == scope]


def pick(*ids: str) -> list[BindingType]:
    """Bindings by id, for screens that use a few keys of a shared scope (e.g. dialogs)."""
    return [BY_ID[i].binding() for i in ids]


def in_scope(scope: str) -> list[Key]:
    return [k for k in KEYS if k.scope == scope]


def effective_key(key: Key, overrides: Mapping[str, str]) -> str:
    """The key(s) in force for a binding after the user's remapping."""
    return overrides.get(key.id, key.key)


def check_overrides(overrides: Mapping[str, str]) -> tuple[dict[str, str], list[str]]:
    """Split the user's ``[keys]`` table into usable remappings and one problem per bad entry."""
    good: dict[str, str] = {}
    problems: list[str] = []
    for binding_id, keys in overrides.items():
        if binding_id not in BY_ID:
            problems.append(f"keys: unknown binding id {binding_id!r} (see the help screen, F1)")
        elif not keys.strip():
            problems.append(f"keys: {binding_id} has an empty key")
        else:
            good[binding_id] = keys
    return good, problems


def display(keys: str) -> str:
    """How a key string is shown to people: ``ctrl+j,shift+enter`` -> ``ctrl+j / shift+enter``."""
    names = {"question_mark": "?", "slash": "/", "space": "space", "delete": "del"}
    return " / ".join(names.get(k.strip(), k.strip()) for k in keys.split(","))


def palette_entries(scopes: Iterable[str]) -> list[Key]:
    """Bindings the command palette should offer for the given scopes."""
    wanted = set(scopes)
    return [k for k in KEYS if k.scope in wanted and k.palette]
