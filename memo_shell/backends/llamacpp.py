"""llama.cpp in-process (``llama-cpp-python``): any GGUF file, or one from a models directory.

Three rules shape this module:

* **Load once per process.** A model is loaded on first use and kept in a module-level
  registry, keyed by file and context size, so switching back to a model or opening a second
  ``Shell`` costs nothing.
* **Never on the event loop.** Loading and generation run on one dedicated worker thread (a
  ``llama.cpp`` context is not thread-safe, so one thread also serialises them). Pieces cross to
  the loop through a queue; cancelling the consumer sets a flag the worker checks after every
  token, so Esc stops generation within one token.
* **Never on the terminal.** llama.cpp logs to stderr from C, which would scribble over the TUI;
  its log goes to Python's ``logging`` instead, and the last lines are kept to explain failures.

Models with a chat template in their GGUF metadata use it (``create_chat_completion``); base
models (no template, like the embedded Gemma 3 270M) get the completion format of
:mod:`memo_shell.backends.completion_format`.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import ctypes
import logging
import os
import threading
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from memo_shell.backends import completion_format
from memo_shell.backends.base import (
    GenerationOptions,
    Health,
    Message,
    ModelInfo,
    estimate_tokens,
    unsupported_embedding,
)
from memo_shell.errors import BackendError

if TYPE_CHECKING:
    from llama_cpp import Llama

log = logging.getLogger("memo_shell.llama_cpp")

GGUF_MAGIC = b"GGUF"
#: Projector and adapter files sit beside models in the usual directories but cannot chat.
_NOT_MODELS = ("mmproj", "lora", "adapter", "vocab")

_EXECUTOR = ThreadPoolExecutor(max_workers=1, thread_name_prefix="llama-cpp")
_REGISTRY: dict[tuple[str, int, bool], Llama] = {}
_REGISTRY_LOCK = threading.Lock()
_RECENT_LOG: deque[str] = deque(maxlen=8)
_LOG_HOOKED = False
_END = object()
#: Exact token counts remembered per backend (texts longer than the limit are not kept).
_COUNT_CACHE_SIZE = 4096
_MAX_CACHED_CHARS = 8192


def _hook_logging() -> None:
    """Route llama.cpp's C-level log into Python logging (once per process)."""
    global _LOG_HOOKED, _log_callback
    if _LOG_HOOKED:
        return
    import llama_cpp

    @llama_cpp.llama_log_callback
    def callback(level: int, text: bytes, user_data: ctypes.c_void_p) -> None:
        line = text.decode("utf-8", "replace").rstrip()
        if line:
            _RECENT_LOG.append(line)
            log.debug("%s", line)

    _log_callback = callback  # keep a reference: C holds only a raw pointer
    llama_cpp.llama_log_set(callback, ctypes.c_void_p(0))
    _LOG_HOOKED = True


_log_callback: Any = None


def default_threads() -> int:
    """All the CPUs this process may use, up to 8 (beyond that memory bandwidth limits)."""
    try:
        available = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        available = os.cpu_count() or 1
    return max(1, min(available, 8))


# ---------------------------------------------------------------------------- GGUF files


def check_gguf(path: Path) -> Path:
    """The file itself, or a BackendError saying why it cannot be a model (cheap: no loading)."""
    path = path.expanduser()
    if not path.exists():
        raise BackendError(f"the model file {path} does not exist; check gguf_path or --model")
    if path.is_dir():
        raise BackendError(f"{path} is a directory; choose one of its models with --model NAME")
    try:
        with open(path, "rb") as handle:
            magic = handle.read(4)
    except OSError as exc:
        raise BackendError(f"cannot read the model file {path}: {exc.strerror}") from None
    if magic != GGUF_MAGIC:
        raise BackendError(f"{path} is not a GGUF model file (llama.cpp needs .gguf)")
    return path


def list_gguf(directory: Path) -> list[Path]:
    """Model files under ``directory`` (LM Studio style nesting included), sorted by name."""
    found = [
        p
        for p in directory.expanduser().rglob("*.gguf")
        if p.is_file() and not any(word in p.name.lower() for word in _NOT_MODELS)
    ]
    return sorted(found, key=lambda p: p.name.lower())


def resolve_gguf(location: Path, model: str | None) -> Path:
    """Pick the GGUF file: ``location`` itself, or the file in that directory named ``model``.

    ``model`` matches a file name with or without ``.gguf``, case-insensitively, or a unique
    prefix of one; a directory with a single model needs no name at all.
    """
    location = location.expanduser()
    if not location.is_dir():
        return check_gguf(location)
    files = list_gguf(location)
    if not files:
        raise BackendError(f"there are no .gguf models in {location}")
    if not model:
        if len(files) == 1:
            return check_gguf(files[0])
        names = ", ".join(p.stem for p in files[:8])
        raise BackendError(
            f"{location} holds {len(files)} models; choose one with --model NAME ({names})"
        )
    wanted = model.lower().removesuffix(".gguf")
    exact = [p for p in files if p.stem.lower() == wanted]
    prefixed = [p for p in files if p.stem.lower().startswith(wanted)]
    matches = exact or prefixed
    if len(matches) == 1:
        return check_gguf(matches[0])
    if not matches:
        raise BackendError(
            f"no model named {model!r} in {location}; `memo-shell doctor` lists them"
        )
    names = ", ".join(p.stem for p in matches[:8])
    raise BackendError(f"{model!r} matches several models in {location}: {names}")


# ---------------------------------------------------------------------------- loading


def _load(path: Path, n_ctx: int, embedding: bool = False) -> Llama:
    """The loaded model (from the registry, or loaded now). Runs on the worker thread."""
    key = (str(path), n_ctx, embedding)
    with _REGISTRY_LOCK:
        if key in _REGISTRY:
            return _REGISTRY[key]
    try:
        import llama_cpp
    except ImportError:
        raise BackendError(
            "llama.cpp is not installed; `pip install llama-cpp-python`, or use Ollama"
        ) from None
    _hook_logging()
    _RECENT_LOG.clear()
    try:
        llm = llama_cpp.Llama(
            model_path=str(path),
            n_ctx=n_ctx,
            n_threads=default_threads(),
            embedding=embedding,
            # one vector per text (mean of its tokens), whatever the GGUF's default pooling
            **({"pooling_type": llama_cpp.LLAMA_POOLING_TYPE_MEAN} if embedding else {}),
            verbose=False,
        )
    except (ValueError, RuntimeError, OSError) as exc:
        reason = next((line for line in reversed(_RECENT_LOG) if "error" in line.lower()), "")
        detail = f" ({reason})" if reason else f" ({exc})"
        raise BackendError(f"llama.cpp could not load {path} as a model{detail}") from None
    with _REGISTRY_LOCK:
        _REGISTRY[key] = llm
    return llm


@atexit.register
def _release_models() -> None:
    """Free loaded models while llama_cpp's module is still whole.

    Left to garbage collection at interpreter exit, ``Llama.__del__`` runs after the module's
    globals are gone and prints a TypeError traceback. atexit runs after the worker thread has
    been joined, so nothing is generating by now.
    """
    with _REGISTRY_LOCK:
        models = list(_REGISTRY.values())
        _REGISTRY.clear()
    for llm in models:
        with contextlib.suppress(Exception):
            llm.close()


def loaded_models() -> list[str]:
    """Files currently loaded in this process (for `doctor` and tests)."""
    with _REGISTRY_LOCK:
        return sorted({key[0] for key in _REGISTRY})


def _is_chat_model(llm: Llama) -> bool:
    return "tokenizer.chat_template" in (llm.metadata or {})


# ---------------------------------------------------------------------------- the backend


class LlamaCppBackend:
    """A GGUF model run in this process by llama.cpp.

    ``model_name`` is the name shown and stored with each memory (default: the file's stem).
    ``context_size`` is the window the model is loaded with; a base model's completion format
    adds a fixed preamble, so the usable ``context_size`` attribute is reduced by its size.
    """

    name = "llama-cpp"

    def __init__(
        self,
        path: Path,
        *,
        model_name: str | None = None,
        context_size: int = 4096,
    ) -> None:
        self.path = check_gguf(path)
        self.model = model_name or self.path.stem
        self.n_ctx = context_size
        # Room for the completion format's examples and separators (counted conservatively).
        self.context_size = context_size - (estimate_tokens(completion_format.EXAMPLES) + 16)
        self._counts: OrderedDict[str, int] = OrderedDict()

    def __repr__(self) -> str:
        return f"LlamaCppBackend({str(self.path)!r}, model={self.model!r})"

    @property
    def loaded(self) -> bool:
        with _REGISTRY_LOCK:
            return (str(self.path), self.n_ctx, False) in _REGISTRY

    async def load(self) -> None:
        """Load the model now (off the event loop), e.g. while the user is still typing."""
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(_EXECUTOR, _load, self.path, self.n_ctx)

    # ------------------------------------------------------------------ prompts

    def render_prompt(self, messages: Sequence[Message]) -> str | None:
        """The exact text a base model receives, or None when the GGUF's chat template (applied
        inside llama.cpp) formats the messages."""
        with _REGISTRY_LOCK:
            llm = _REGISTRY.get((str(self.path), self.n_ctx, False))
        if llm is not None and _is_chat_model(llm):
            return None
        return completion_format.render(messages, _memory_preamble())

    def _pieces(
        self, llm: Llama, messages: Sequence[Message], options: GenerationOptions
    ) -> Iterator[str]:
        """Text pieces from llama.cpp (runs on the worker thread).

        Sampling left unset (None) gets the model's defaults: llama.cpp's for chat models, the
        near-greedy values the completion format was tuned with for base models.
        """
        chat = _is_chat_model(llm)
        common: dict[str, Any] = {"max_tokens": options.max_tokens, "stream": True}
        if options.seed is not None:
            common["seed"] = options.seed
        if options.temperature is not None or not chat:
            common["temperature"] = (
                options.temperature
                if options.temperature is not None
                else completion_format.TEMPERATURE
            )
        if options.top_p is not None or not chat:
            common["top_p"] = (
                options.top_p if options.top_p is not None else completion_format.TOP_P
            )
        if chat:
            chunks = llm.create_chat_completion(messages=[dict(m) for m in messages], **common)
            with contextlib.closing(chunks):
                for chunk in chunks:
                    text = chunk["choices"][0]["delta"].get("content")
                    if text:
                        yield text
            return
        prompt = completion_format.render(messages, _memory_preamble())
        stream = llm.create_completion(
            prompt,
            stop=completion_format.STOP,
            repeat_penalty=completion_format.REPEAT_PENALTY,
            **common,
        )
        with contextlib.closing(stream):
            # The answer follows "A:" (the model writes the space itself) and ends at a stop
            # string whose leading newline may already have streamed: trim both ends.
            held = ""
            started = False
            for chunk in stream:
                text = held + chunk["choices"][0]["text"]
                if not started:
                    text = text.lstrip()
                    started = bool(text)
                body = text.rstrip()
                held = text[len(body) :]
                if body:
                    yield body

    async def stream(
        self, messages: Sequence[Message], options: GenerationOptions
    ) -> AsyncIterator[str]:
        """Yield pieces as llama.cpp produces them; loads the model first if needed."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[object] = asyncio.Queue()
        stop = threading.Event()

        def post(item: object) -> None:
            with contextlib.suppress(RuntimeError):  # the loop closed under us: nobody listens
                loop.call_soon_threadsafe(queue.put_nowait, item)

        def work() -> None:
            try:
                llm = _load(self.path, self.n_ctx)
                if stop.is_set():
                    return
                pieces = self._pieces(llm, messages, options)
                with contextlib.closing(pieces):  # closing it ends llama.cpp's generation
                    for piece in pieces:
                        post(piece)
                        if stop.is_set():
                            return
            except BaseException as exc:  # every failure crosses to the loop, none is lost
                post(exc)
            finally:
                post(_END)

        loop.run_in_executor(_EXECUTOR, work)
        try:
            while True:
                item = await queue.get()
                if item is _END:
                    return
                if isinstance(item, BaseException):
                    raise self._error(item)
                yield item  # type: ignore[misc]
        finally:
            stop.set()

    def _error(self, exc: BaseException) -> BaseException:
        if isinstance(exc, BackendError):
            return exc
        text = str(exc)
        if "exceed context window" in text:
            return BackendError(
                f"the prompt does not fit {self.model}'s context of {self.n_ctx} tokens ({text});"
                " shorten the question or raise context_size"
            )
        return BackendError(f"llama.cpp failed while generating with {self.model}: {text}")

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """Embeddings from a second, embedding-mode instance of the same file (loaded once)."""
        loop = asyncio.get_running_loop()

        def work() -> list[list[float]]:
            llm = _load(self.path, self.n_ctx, embedding=True)
            return [list(map(float, v)) for v in llm.embed(list(texts), normalize=True)]

        try:
            return await loop.run_in_executor(_EXECUTOR, work)
        except BackendError:
            raise
        except (ValueError, RuntimeError) as exc:
            raise unsupported_embedding(self.name, self.model) from exc

    async def models(self) -> list[ModelInfo]:
        size = self.path.stat().st_size
        return [ModelInfo(self.model, size, str(self.path))]

    async def health(self) -> Health:
        try:
            check_gguf(self.path)
        except BackendError as exc:
            return Health(False, str(exc))
        try:
            import llama_cpp  # noqa: F401
        except ImportError:
            return Health(False, "llama.cpp is not installed (`pip install llama-cpp-python`)")
        state = "loaded" if self.loaded else "loads on first use"
        return Health(True, f"llama.cpp in-process, {self.model} ({state})")

    def count_tokens(self, text: str) -> int:
        """Exact once the model is loaded (its own tokenizer); an estimate before that.

        Exact counts are cached: the same memories, system prompt and memory frame come back
        turn after turn, and tokenizing them again would sit in front of every first token.
        """
        cached = self._counts.get(text)
        if cached is not None:
            self._counts.move_to_end(text)
            return cached
        with _REGISTRY_LOCK:
            llm = _REGISTRY.get((str(self.path), self.n_ctx, False))
        if llm is None or not text:
            return estimate_tokens(text)
        count = len(llm.tokenize(text.encode("utf-8"), add_bos=False, special=False))
        if len(text) <= _MAX_CACHED_CHARS:
            self._counts[text] = count
            if len(self._counts) > _COUNT_CACHE_SIZE:
                self._counts.popitem(last=False)
        return count

    async def aclose(self) -> None:
        """Nothing to release: the model stays loaded for the rest of the process on purpose."""


def _memory_preamble() -> str:
    from memo_shell.prompt import MEMORY_PREAMBLE  # late: prompt imports this package

    return MEMORY_PREAMBLE


def run_on_worker(fn: Callable[[], Any]) -> Any:
    """Run ``fn`` on the llama.cpp worker thread and wait (for tests and the benchmark)."""
    return _EXECUTOR.submit(fn).result()
