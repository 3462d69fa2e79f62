"""The model picker: Ollama's models, an OpenAI-compatible server's, GGUF files, the embedded one.

Every source is asked at once, each with its own short timeout, and a source that is down is
listed as such rather than hiding the others. Picking an entry builds that backend (loading a
local model off the event loop, with a progress bar) and hands it to the running shell: the
conversation carries on with the new model.

A source that was not discovered can be typed: an Ollama host (``http://gpu-box:11434``), an
OpenAI-compatible URL ending in ``/v1`` (LM Studio, llama.cpp's server, vLLM) or the path of a
``.gguf`` file (loaded at once) or of a directory of them (listed).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from textual import on, work
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Input, Label, OptionList, Static
from textual.widgets.option_list import Option

from memo_shell.errors import MemoShellError
from memo_shell.tui import fmt, keymap
from memo_shell.tui.screens import SCREENS_CSS
from memo_shell.tui.widgets.key_bar import KeyBar

if TYPE_CHECKING:
    from memo_shell.config import Settings
    from memo_shell.tui.runtime import Runtime

#: A server gets this long to list its models before the picker says it is not answering.
LIST_TIMEOUT_S = 2.0
SOURCE_PLACEHOLDER = "Type: Ollama host, OpenAI URL (…/v1) or .gguf path"
#: Shown while the built-in model answers (the chat's welcome says the same on first run).
TINY_MODEL_NOTE = (
    "The built-in model is Gemma 3 270M, a tiny base model for trying memo-shell out, not for "
    "real answers. For a real one, type it above or pick it below: an Ollama model (after "
    "`ollama pull llama3.2`), LM Studio's server (http://127.0.0.1:1234/v1) or a .gguf file."
)


@dataclass(frozen=True)
class ModelEntry:
    """One choice in the picker."""

    kind: str  # "ollama" | "openai" | "gguf" | "embedded"
    name: str  # model name (servers) or file path (gguf)
    size_bytes: int | None = None
    details: str = ""
    url: str | None = None  # a server the user typed (None: the configured one)

    @property
    def key(self) -> str:
        return (
            f"{self.kind}:{self.name}"
            if self.url is None
            else f"{self.kind}@{self.url}:{self.name}"
        )


@dataclass(frozen=True)
class SourceProblem:
    """A source that could not be listed, and why (shown as a disabled line)."""

    kind: str
    message: str


async def _server_models(
    kind: str, backend: Any, url: str | None = None
) -> list[ModelEntry] | SourceProblem:
    try:
        listed = await asyncio.wait_for(backend.models(), LIST_TIMEOUT_S)
    except TimeoutError:
        return SourceProblem(kind, f"{kind}: no answer from {backend.url}")
    except MemoShellError as exc:
        return SourceProblem(kind, f"{kind}: {exc}")
    finally:
        await backend.aclose()
    if not listed:
        return SourceProblem(kind, f"{kind}: {backend.url} answers but has no models")
    return [ModelEntry(kind, m.name, m.size_bytes, m.details, url) for m in listed]


def parse_source(text: str) -> tuple[str, str]:
    """What the user typed: ``("gguf", path)``, ``("openai", url)`` or ``("ollama", url)``.

    A path starts with ``/``, ``~`` or ``.``, or names a ``.gguf`` file; a URL ending in ``/v1``
    is OpenAI-compatible; any other URL or ``host:port`` is an Ollama host.
    """
    text = text.strip()
    if text.startswith(("/", "~", ".")) or text.lower().endswith(".gguf"):
        return "gguf", text
    url = text if "://" in text else f"http://{text}"
    url = url.rstrip("/")
    return ("openai" if url.endswith("/v1") else "ollama"), url


async def typed_source(text: str, settings: Settings) -> list[ModelEntry | SourceProblem]:
    """Models at a source the user typed (see ``parse_source``); never raises: whatever was
    typed (a malformed URL, a NUL in a path) becomes one line saying why it cannot be used."""
    kind, where = parse_source(text)
    try:
        return await _typed_source(kind, where, settings)
    except Exception as exc:  # user input at the boundary: a sentence, never a traceback
        reason = str(exc).splitlines()[0].rstrip(".") if str(exc) else type(exc).__name__
        return [SourceProblem(kind, f"{where!r} cannot be used as {_KINDS[kind]}: {reason}.")]


_KINDS = {
    "gguf": "a .gguf path",
    "openai": "an OpenAI-compatible URL",
    "ollama": "an Ollama host",
}


async def _typed_source(
    kind: str, where: str, settings: Settings
) -> list[ModelEntry | SourceProblem]:
    from memo_shell.backends import OllamaBackend, OpenAIBackend

    if kind == "gguf":
        from memo_shell.backends.llamacpp import list_gguf

        path = Path(where).expanduser()
        if path.is_dir():
            files = await asyncio.to_thread(list_gguf, path)
            if not files:
                return [SourceProblem("gguf", f"No .gguf files under {path}.")]
            return [ModelEntry("gguf", str(f), _size(f), "llama.cpp in-process") for f in files]
        if not path.is_file():
            return [SourceProblem("gguf", f"No such file: {path}.")]
        return [ModelEntry("gguf", str(path), _size(path), "llama.cpp in-process")]
    if kind == "openai":
        backend: Any = OpenAIBackend(where, api_key=settings.openai_api_key)
    else:
        backend = OllamaBackend(where)
    found = await _server_models(kind, backend, where)
    return [*found] if isinstance(found, list) else [found]


def _size(path: Path) -> int | None:
    try:
        return path.stat().st_size
    except OSError:
        return None


def _local_models(settings: Settings) -> list[ModelEntry]:
    """GGUF files from ``gguf_path`` and the embedded model. Blocking (directory walk)."""
    from memo_shell.backends import embedded
    from memo_shell.backends.llamacpp import list_gguf

    found: list[ModelEntry] = []
    if settings.gguf_path is not None:
        location = settings.gguf_path.expanduser()
        paths = list_gguf(location) if location.is_dir() else [location]
        for path in paths:
            try:
                size = path.stat().st_size
            except OSError:
                continue
            found.append(ModelEntry("gguf", str(path), size, "llama.cpp in-process"))
    if embedded.available():
        ready = "ready" if embedded.cached_path() is not None else "assembled on first use"
        found.append(
            ModelEntry(
                "embedded",
                embedded.MODEL_NAME,
                None,
                f"{embedded.DISPLAY_NAME}, built in ({ready})",
            )
        )
    return found


async def discover(settings: Settings) -> list[ModelEntry | SourceProblem]:
    """Every model memo-shell could use right now, grouped by source."""
    from memo_shell.backends import OllamaBackend, OpenAIBackend

    jobs = [_server_models("ollama", OllamaBackend(settings.ollama_host))]
    if settings.openai_base_url:
        jobs.append(
            _server_models(
                "openai", OpenAIBackend(settings.openai_base_url, api_key=settings.openai_api_key)
            )
        )
    results = await asyncio.gather(*jobs)
    entries: list[ModelEntry | SourceProblem] = []
    for result in results:
        entries.extend(result if isinstance(result, list) else [result])
    try:
        entries.extend(await asyncio.to_thread(_local_models, settings))
    except MemoShellError as exc:
        entries.append(SourceProblem("gguf", f"local models: {exc}"))
    return entries


async def build_backend(entry: ModelEntry, settings: Settings) -> Any:
    """The backend for a picked entry; local models are loaded here, off the event loop."""
    from memo_shell.backends import LlamaCppBackend, OllamaBackend, OpenAIBackend, local_backend

    if entry.kind == "ollama":
        host = entry.url or settings.ollama_host
        return OllamaBackend(host, entry.name, context_size=settings.context_size)
    if entry.kind == "openai":
        base_url = entry.url or settings.openai_base_url
        assert base_url is not None
        return OpenAIBackend(
            base_url,
            entry.name,
            api_key=settings.openai_api_key,
            context_size=settings.context_size,
        )
    if entry.kind == "gguf":
        backend = await asyncio.to_thread(
            LlamaCppBackend, Path(entry.name), context_size=settings.context_size
        )
    else:
        backend = await asyncio.to_thread(
            local_backend, settings.with_overrides(backend="llama-cpp", model="embedded")
        )
    await backend.load()
    return backend


def entry_prompt(entry: ModelEntry, current: bool) -> Content:
    name = Path(entry.name).name if entry.kind == "gguf" else entry.name
    return Content.assemble(
        (f"{entry.kind:<9}", "$text-muted"),
        (name, "bold"),
        ("  ● in use", "$success") if current else "",
        "\n         ",
        (
            " · ".join(x for x in (entry.details, fmt.size(entry.size_bytes)) if x and x != "?"),
            "$text-muted",
        ),
    )


class ModelScreen(ModalScreen[None]):
    """Lists models from every source; enter switches the chat to the highlighted one."""

    CSS_PATH = SCREENS_CSS

    BINDINGS = keymap.pick("dialog.close")

    def __init__(self, runtime: Runtime) -> None:
        super().__init__(classes="dialog-screen")
        self.runtime = runtime
        self.entries: dict[str, ModelEntry] = {}

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="models-dialog"):
            yield Label("Models", classes="dialog-title")
            # Static, not Label: a long reason wraps instead of being cut off
            yield Static("", id="models-current", classes="dialog-hint", markup=False)
            yield Input(placeholder=SOURCE_PLACEHOLDER, id="model-source")
            yield OptionList(id="models")
            yield KeyBar()

    def on_mount(self) -> None:
        backend = self.runtime.backend
        current = (
            f"In use: {backend.model} via {backend.name}. {self.runtime.backend_reason}".strip()
            if backend is not None
            else f"No model in use. {self.runtime.backend_error or ''}".strip()
        )
        if backend is None or _is_embedded(backend):
            current += f"\n\n{TINY_MODEL_NOTE}"
        self.query_one("#models-current", Static).update(current)
        options = self.query_one(OptionList)
        options.add_option(Option("Looking for models…", disabled=True))
        options.focus()
        self.load()

    @on(Input.Submitted, "#model-source")
    def source_typed(self, event: Input.Submitted) -> None:
        event.stop()
        if event.value.strip():
            self.load_typed(event.value)

    @work(exclusive=True, group="models")
    async def load_typed(self, text: str) -> None:
        options = self.query_one(OptionList)
        options.clear_options()
        options.add_option(Option(Content(f"Asking {text.strip()}…"), disabled=True))
        found = await typed_source(text, self.runtime.settings)
        entries = [e for e in found if isinstance(e, ModelEntry)]
        if len(entries) == 1 and entries[0].kind == "gguf":
            self.switch(entries[0])  # a file: nothing to choose
            return
        self.show(found, typed=True)
        if entries:
            options.highlighted = next(i for i, o in enumerate(options.options) if not o.disabled)
            options.focus()

    @work(exclusive=True, group="models")
    async def load(self) -> None:
        self.show(await discover(self.runtime.settings))

    def show(self, found: list[ModelEntry | SourceProblem], *, typed: bool = False) -> None:
        options = self.query_one(OptionList)
        options.clear_options()
        self.entries.clear()
        backend = self.runtime.backend
        for item in found:
            if isinstance(item, SourceProblem):
                options.add_option(
                    Option(Content.styled(item.message, "$text-muted"), disabled=True)
                )
                continue
            self.entries[item.key] = item
            current = backend is not None and _same(item, backend)
            options.add_option(Option(entry_prompt(item, current), id=item.key))
        if not self.entries and not typed:  # (a typed source has said why it gave nothing)
            options.add_option(
                Option(
                    "No models found: start Ollama, type a server or a .gguf path above, or "
                    "install the embedded model package.",
                    disabled=True,
                )
            )

    @on(OptionList.OptionSelected)
    def picked(self, event: OptionList.OptionSelected) -> None:
        entry = self.entries.get(event.option.id or "")
        if entry is not None:
            self.switch(entry)

    def switch(self, entry: ModelEntry) -> None:
        # The switch outlives this dialog, so it runs as an app worker.
        self.app.run_worker(switch_model(self.app, self.runtime, entry), group="switch")
        self.dismiss(None)

    def action_close(self) -> None:
        self.dismiss(None)


async def switch_model(app: Any, runtime: Runtime, entry: ModelEntry) -> None:
    """Build the picked backend (showing progress while a local model loads) and switch to it."""
    runtime.set_preparing(f"loading {Path(entry.name).name}…")
    try:
        backend = await build_backend(entry, runtime.settings)
    except MemoShellError as exc:
        app.notify(str(exc), title="Model", severity="error", timeout=15)
        return
    finally:
        runtime.set_preparing(None)
    runtime.backend_reason = f"picked in the model list: {backend.model} via {backend.name}"
    await runtime.set_backend(backend)  # announces the new backend (messages.BackendReady)
    app.notify(
        f"Now answering with {backend.model} ({backend.name}). To start with it next time, "
        f"put in {runtime.settings.config_file}: {config_lines(entry)}",
        timeout=12,
    )


def config_lines(entry: ModelEntry) -> str:
    """The config-file lines that make ``entry`` the default model."""
    if entry.kind == "gguf":
        return f'backend = "llama-cpp", gguf_path = "{entry.name}"'
    if entry.kind == "embedded":
        return 'backend = "llama-cpp", model = "embedded"'
    if entry.kind == "openai":
        url = f', openai_base_url = "{entry.url}"' if entry.url else ""
        return f'backend = "openai", model = "{entry.name}"{url}'
    url = f', ollama_host = "{entry.url}"' if entry.url else ""
    return f'backend = "ollama", model = "{entry.name}"{url}'


def _is_embedded(backend: Any) -> bool:
    from memo_shell.backends import embedded

    return backend.name == "llama-cpp" and backend.model == embedded.MODEL_NAME


def _same(entry: ModelEntry, backend: Any) -> bool:
    if entry.kind in ("gguf", "embedded"):
        if backend.name != "llama-cpp":
            return False
        return (
            entry.name == backend.model
            if entry.kind == "embedded"
            else (str(getattr(backend, "path", "")) == entry.name)
        )
    return backend.name == entry.kind and backend.model == entry.name
