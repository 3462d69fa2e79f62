"""llama.cpp (``llama-cpp-python``) for any GGUF file, run in a child process of the app.

Four rules shape this module:

* **A crash of the model is not a crash of the app.** Loading and generation run in a worker
  process (:mod:`memo_shell.backends.llama_worker`): an illegal instruction, a segmentation
  fault, an abort or the OOM killer end only that process, and the user reads one sentence
  naming the cause and the fix (:mod:`memo_shell.backends.llama_process`). The next request
  starts a new worker.
* **Load once.** The worker keeps every model it loaded, keyed by file and context size, so
  switching back to a model or opening a second ``Shell`` costs nothing.
* **Never on the event loop.** Requests go to the worker from one dedicated thread (llama.cpp
  contexts are not thread-safe; one thread serialises them). Pieces cross to the loop through
  a queue; cancelling the consumer tells the worker to stop after the current token.
* **Never on the terminal.** The worker's output streams are pipes; this process only loads
  a model's vocabulary (no weights, no compute) for exact token counts, with llama.cpp's log
  routed to Python ``logging``.

Models with a chat template in their GGUF metadata use it (``create_chat_completion``); base
models (no template, like the embedded Gemma 3 270M) get the completion format of
:mod:`memo_shell.backends.completion_format`.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import ctypes
import itertools
import logging
import os
import threading
from collections import OrderedDict
from collections.abc import AsyncGenerator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from memo_shell.backends import completion_format
from memo_shell.backends.base import (
    GenerationOptions,
    Health,
    ModelInfo,
    estimate_tokens,
    unsupported_embedding,
)
from memo_shell.backends.llama_process import FAULT_ENV, Worker, WorkerCrashed
from memo_shell.errors import BackendError
from memo_shell.prompt import Chat, as_messages

if TYPE_CHECKING:
    from llama_cpp import Llama

log = logging.getLogger("memo_shell.llama_cpp")

GGUF_MAGIC = b"GGUF"
#: Projector and adapter files sit beside models in the usual directories but cannot chat.
_NOT_MODELS = ("mmproj", "lora", "adapter", "vocab")


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


# ---------------------------------------------------------------------------- the worker

_EXECUTOR = ThreadPoolExecutor(max_workers=1, thread_name_prefix="llama-cpp")
_END = object()
#: Exact token counts remembered per backend (texts longer than the limit are not kept).
_COUNT_CACHE_SIZE = 4096
_MAX_CACHED_CHARS = 8192

_worker: Worker | None = None
_REQUEST_IDS = itertools.count(1)
_worker_lock = threading.Lock()
#: Tokenizers (vocabulary only: no weights, no compute) for exact counts in this process.
_VOCABS: dict[str, Llama] = {}
_VOCAB_LOCK = threading.Lock()
_log_callback: Any = None


def _hook_logging() -> None:
    """Keep llama.cpp's C-level log off the terminal (the vocab loads in this process)."""
    global _log_callback
    if _log_callback is not None:
        return
    import llama_cpp

    @llama_cpp.llama_log_callback
    def callback(level: int, text: bytes, user_data: ctypes.c_void_p) -> None:
        line = text.decode("utf-8", "replace").rstrip()
        if line:
            log.debug("%s", line)

    _log_callback = callback  # keep a reference: C holds only a raw pointer
    llama_cpp.llama_log_set(callback, ctypes.c_void_p(0))


def _current_worker() -> Worker:
    """The live worker process, started now if there is none (or the last one died)."""
    global _worker
    with _worker_lock:
        if _worker is None or not _worker.alive:
            if _worker is not None:
                _worker.close()
            _worker = Worker()
        return _worker


def worker_pid() -> int | None:
    """The worker process's id, if one runs (for tests and `doctor`)."""
    with _worker_lock:
        return _worker.pid if _worker is not None and _worker.alive else None


def _request(worker: Worker, message: dict[str, Any], model: str) -> dict[str, Any]:
    """Send one request and wait for its one reply (runs on the executor thread)."""
    worker.send(message)
    reply = worker.recv(model)
    if "error" in reply:
        raise BackendError(str(reply["error"]))
    return reply


def _ensure_loaded(worker: Worker, path: Path, n_ctx: int, model: str, embedding: bool) -> bool:
    """Load the model in the worker unless already there; whether it is a chat model."""
    key = (str(path), n_ctx, embedding)
    if key not in worker.loaded:
        reply = _request(
            worker,
            {
                "op": "load",
                "path": str(path),
                "n_ctx": n_ctx,
                "embedding": embedding,
                "fault": os.environ.get(FAULT_ENV) or "",
            },
            model,
        )
        worker.loaded[key] = bool(reply.get("chat"))
    return worker.loaded[key]


@atexit.register
def _stop_worker() -> None:
    """End the worker with the app (it would also exit on its own when its stdin closes)."""
    with _worker_lock:
        if _worker is not None:
            _worker.close()


def _vocab(path: Path) -> Llama | None:
    """The model's tokenizer in this process, once the worker has loaded the file safely."""
    with _VOCAB_LOCK:
        found = _VOCABS.get(str(path))
        if found is not None:
            return found
        import llama_cpp

        _hook_logging()
        try:
            llm = llama_cpp.Llama(model_path=str(path), vocab_only=True, verbose=False)
        except (ValueError, RuntimeError, OSError):
            return None
        _VOCABS[str(path)] = llm
        return llm


@atexit.register
def _release_vocabs() -> None:
    """Free tokenizers while llama_cpp's module is still whole (see Llama.__del__ at exit)."""
    with _VOCAB_LOCK:
        vocabs = list(_VOCABS.values())
        _VOCABS.clear()
    for llm in vocabs:
        with contextlib.suppress(Exception):
            llm.close()


def probe(path: Path, n_ctx: int = 512, timeout: float = 120.0) -> str | None:
    """Generate one token from ``path`` in a fresh child process: None if it works, else why.

    For `doctor`: a model that crashes the process, cannot load, or takes longer than
    ``timeout`` seconds is reported with the sentence a user would see in the app.
    """
    try:
        worker = Worker()
    except BackendError as exc:
        return str(exc)
    expired = threading.Event()

    def expire() -> None:
        expired.set()
        worker.kill()

    timer = threading.Timer(timeout, expire)
    timer.start()
    try:
        worker.send(
            {
                "op": "generate",
                "path": str(path),
                "n_ctx": n_ctx,
                "messages": [{"role": "user", "content": "Hello"}],
                "completion": completion_format.render([{"role": "user", "content": "Hello"}]),
                "options": {"max_tokens": 1, "temperature": 0.0, "top_p": 1.0, "seed": 1},
                "fault": os.environ.get(FAULT_ENV),
            }
        )
        while True:
            reply = worker.recv(path.stem)
            if "error" in reply:
                return str(reply["error"])
            if reply.get("end"):
                return None
    except BackendError as exc:
        if expired.is_set():
            return f"{path.stem} did not produce a token within {timeout:.0f} s"
        return str(exc)
    finally:
        timer.cancel()
        worker.close()


# ---------------------------------------------------------------------------- the backend


class LlamaCppBackend:
    """A GGUF model run by llama.cpp in a child process of this app.

    ``model_name`` is the name shown and stored with each memory (default: the file's stem).
    ``context_size`` is the window the model is loaded with; a base model's completion format
    adds a fixed preamble, so the usable ``context_size`` attribute is reduced by its size.
    ``last_finish`` is why the latest reply ended ("stop", "length" at max_tokens, ...).
    ``last_generated`` is the context's token count when it ended (prompt plus reply).
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
        self.last_finish: str | None = None
        self.last_generated = 0
        self._counts: OrderedDict[str, int] = OrderedDict()
        self._chat: bool | None = None

    def __repr__(self) -> str:
        return f"LlamaCppBackend({str(self.path)!r}, model={self.model!r})"

    @property
    def loaded(self) -> bool:
        with _worker_lock:
            worker = _worker
        return (
            worker is not None
            and worker.alive
            and (str(self.path), self.n_ctx, False) in worker.loaded
        )

    def _load_now(self) -> None:
        """Load in the worker, then the tokenizer here (runs on the executor thread)."""
        worker = _current_worker()
        self._chat = _ensure_loaded(worker, self.path, self.n_ctx, self.model, False)
        _vocab(self.path)

    async def load(self) -> None:
        """Load the model now (off the event loop), e.g. while the user is still typing."""
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(_EXECUTOR, self._load_now)

    # ------------------------------------------------------------------ prompts

    def render_prompt(self, chat: Chat) -> str | None:
        """The exact text a base model receives, or None when the GGUF's chat template (applied
        inside llama.cpp) formats the messages."""
        if self._chat:
            return None
        return completion_format.render(chat)

    async def stream(self, chat: Chat, options: GenerationOptions) -> AsyncGenerator[str, None]:
        """Yield pieces as the worker produces them; loads the model first if needed."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[object] = asyncio.Queue()
        stop = threading.Event()
        running: list[Worker] = []
        request_id = next(_REQUEST_IDS)
        self.last_finish = None

        def post(item: object) -> None:
            with contextlib.suppress(RuntimeError):  # the loop closed under us: nobody listens
                loop.call_soon_threadsafe(queue.put_nowait, item)

        def work() -> None:
            try:
                if stop.is_set():
                    return
                self._load_now()
                worker = _current_worker()
                running.append(worker)
                worker.send(self._generate_request(chat, options) | {"id": request_id})
                if stop.is_set():
                    worker.stop(request_id)
                while True:
                    reply = worker.recv(self.model)
                    if "piece" in reply:
                        post(reply["piece"])
                    elif "error" in reply:
                        post(self._error(str(reply["error"])))
                        return
                    elif reply.get("end"):
                        self.last_finish = reply.get("finish")
                        self.last_generated = int(reply.get("generated") or 0)
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
                    raise item
                yield item  # type: ignore[misc]
        finally:
            stop.set()
            if running:
                running[0].stop(request_id)  # the executor thread drains the rest of the reply

    def _generate_request(self, chat: Chat, options: GenerationOptions) -> dict[str, Any]:
        return {
            "op": "generate",
            "path": str(self.path),
            "n_ctx": self.n_ctx,
            # a chat model's template places the messages; a base model gets the text rendered
            # here from the plan's parts (memories under their own heading)
            "messages": [dict(m) for m in as_messages(chat)],
            "completion": completion_format.render(chat),
            "options": {
                "max_tokens": options.max_tokens,
                "temperature": options.temperature,
                "top_p": options.top_p,
                "seed": options.seed,
            },
            "fault": os.environ.get(FAULT_ENV),
        }

    def _error(self, text: str) -> BackendError:
        if "exceed context window" in text:
            return BackendError(
                f"the prompt does not fit {self.model}'s context of {self.n_ctx} tokens ({text});"
                " shorten the question or raise context_size"
            )
        if text.startswith("llama.cpp could not load"):
            return BackendError(text)
        return BackendError(f"llama.cpp failed while generating with {self.model}: {text}")

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """Embeddings from a second, embedding-mode instance of the same file (loaded once)."""
        loop = asyncio.get_running_loop()

        def work() -> list[list[float]]:
            worker = _current_worker()
            _ensure_loaded(worker, self.path, self.n_ctx, self.model, True)
            message = {
                "op": "embed",
                "path": str(self.path),
                "n_ctx": self.n_ctx,
                "texts": list(texts),
            }
            return _request(worker, message, self.model)["vectors"]

        try:
            return await loop.run_in_executor(_EXECUTOR, work)
        except WorkerCrashed:
            raise
        except BackendError as exc:
            if "could not load" in str(exc):
                raise
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
        return Health(True, f"llama.cpp in a worker process, {self.model} ({state})")

    def count_tokens(self, text: str) -> int:
        """Exact once the model is loaded (its own tokenizer); an estimate before that.

        Exact counts are cached: the same memories, system prompt and memory frame come back
        turn after turn, and tokenizing them again would sit in front of every first token.
        """
        cached = self._counts.get(text)
        if cached is not None:
            self._counts.move_to_end(text)
            return cached
        with _VOCAB_LOCK:
            llm = _VOCABS.get(str(self.path))
        if llm is None or not text:
            return estimate_tokens(text)
        count = len(llm.tokenize(text.encode("utf-8"), add_bos=False, special=False))
        if len(text) <= _MAX_CACHED_CHARS:
            self._counts[text] = count
            if len(self._counts) > _COUNT_CACHE_SIZE:
                self._counts.popitem(last=False)
        return count

    async def aclose(self) -> None:
        """Nothing to release: the worker keeps the model for the rest of the app on purpose."""


async def wait_idle() -> None:
    """Wait until every request already sent to the worker is done (tests, the benchmark)."""
    await asyncio.get_running_loop().run_in_executor(_EXECUTOR, lambda: None)
