"""The child process that runs llama.cpp, so a native crash of the model never takes the app down.

llama.cpp is C++: an illegal instruction (a build using CPU features the machine lacks, such
as Intel AMX), a segmentation fault on an unusual GGUF, an ``abort()`` on a failed assertion,
or the kernel's OOM killer end the whole process that runs it. Run here, they end only this
worker; the app reports the cause, keeps the question and starts a fresh worker on the next
request (:mod:`memo_shell.backends.llama_process` is the parent's side).

Protocol: frames of a 4-byte big-endian length and a msgpack map, requests on stdin and
replies on stdout (the real stdout is moved aside first, so nothing a C library prints can
corrupt a frame). A reader thread takes requests; ``{"op": "stop", "id": N}`` is handled there
at once (generation N checks for it after every token), everything else runs in order on the
main thread. Requests: ``load``, ``generate`` (replies: ``piece``... then ``end``), ``embed``;
any request may be answered by ``{"error": sentence}``. End of stdin means the parent is
gone: the worker exits.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import queue
import signal
import struct
import sys
import threading
from collections import deque
from collections.abc import Generator
from typing import IO, Any

import msgpack

from memo_shell.backends import completion_format

_HEADER = struct.Struct(">I")
#: Far above any real message (a batch of 8 embeddings, a prompt within a context window).
MAX_FRAME_BYTES = 64 * 2**20
#: Last lines of llama.cpp's log, to explain a load failure.
_RECENT_LOG: deque[str] = deque(maxlen=8)
_MODELS: dict[tuple[str, int, bool], Any] = {}
#: Ids of generations asked to stop (a late stop never touches a later generation).
_stopped: set[int] = set()


# ---------------------------------------------------------------------------- framing


def write_frame(stream: IO[bytes], message: dict[str, Any]) -> None:
    # A lone surrogate (from a terminal's undecodable bytes) cannot be UTF-8: it becomes "?".
    data = msgpack.packb(message, use_bin_type=True, unicode_errors="replace")
    stream.write(_HEADER.pack(len(data)) + data)
    stream.flush()


def read_frame(stream: IO[bytes]) -> dict[str, Any] | None:
    """The next message, or None at end of stream (the other side is gone)."""
    header = stream.read(_HEADER.size)
    if len(header) < _HEADER.size:
        return None
    (size,) = _HEADER.unpack(header)
    if size > MAX_FRAME_BYTES:
        raise ValueError(f"a frame of {size} bytes")
    data = stream.read(size)
    if len(data) < size:
        return None
    message = msgpack.unpackb(data, raw=False)
    if not isinstance(message, dict):
        raise ValueError("a frame that is not a message")
    return message


# ---------------------------------------------------------------------------- CPU features


def cpu_has_amx() -> bool:
    """True when the CPU reports Intel AMX (Linux /proc/cpuinfo flags)."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as handle:
            for line in handle:
                if line.startswith("flags"):
                    return "amx_tile" in line.split()
    except OSError:
        pass
    return False


def request_amx_permission() -> None:
    """Ask Linux for AMX tile data state before llama.cpp's threads start.

    Since Linux 5.16 a process must request XTILEDATA (``arch_prctl(ARCH_REQ_XCOMP_PERM)``)
    before executing AMX instructions, or it gets SIGILL. llama.cpp's AMX code requests it,
    but not in every version and not before every thread uses it; asking here, once, for the
    whole process costs nothing and is harmless where AMX does not exist (the call fails).
    """
    if sys.platform != "linux" or os.uname().machine not in ("x86_64", "AMD64"):
        return
    with contextlib.suppress(Exception):
        libc = ctypes.CDLL(None, use_errno=True)
        sys_arch_prctl, arch_req_xcomp_perm, xfeature_xtiledata = 158, 0x1023, 18
        libc.syscall(sys_arch_prctl, arch_req_xcomp_perm, xfeature_xtiledata)


# ---------------------------------------------------------------------------- models


def _hook_logging(llama_cpp: Any) -> None:
    @llama_cpp.llama_log_callback
    def callback(level: int, text: bytes, user_data: ctypes.c_void_p) -> None:
        line = text.decode("utf-8", "replace").rstrip()
        if line:
            _RECENT_LOG.append(line)

    globals()["_log_callback"] = callback  # keep a reference: C holds only a raw pointer
    llama_cpp.llama_log_set(callback, ctypes.c_void_p(0))


def _without_extra_buffers(llama_cpp: Any) -> None:
    """Load models without llama.cpp's extra CPU buffer types on AMX machines.

    The extra buffer types are where llama.cpp's AMX kernels live (``use_extra_bufts``); on
    CPUs without AMX they only repack weights, so they stay on there. ``Llama()`` offers no
    parameter for it, so its default model parameters are adjusted in this process only.
    MEMO_SHELL_LLAMA_EXTRA_BUFFERS=1 turns them back on where AMX is proven to work.
    """
    if not cpu_has_amx() or os.environ.get("MEMO_SHELL_LLAMA_EXTRA_BUFFERS") == "1":
        return
    low = llama_cpp.llama_cpp
    original = low.llama_model_default_params

    def defaults() -> Any:
        params = original()
        if hasattr(params, "use_extra_bufts"):
            params.use_extra_bufts = False
        return params

    low.llama_model_default_params = defaults


def _threads() -> int:
    try:
        available = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        available = os.cpu_count() or 1
    return max(1, min(available, 8))


def load(path: str, n_ctx: int, embedding: bool = False) -> Any:
    key = (path, n_ctx, embedding)
    if key in _MODELS:
        return _MODELS[key]
    import llama_cpp

    _RECENT_LOG.clear()
    try:
        # one vector per text (mean of its tokens), whatever the GGUF's default pooling
        pooling: dict[str, Any] = (
            {"pooling_type": llama_cpp.LLAMA_POOLING_TYPE_MEAN} if embedding else {}
        )
        llm = llama_cpp.Llama(
            model_path=path,
            n_ctx=n_ctx,
            n_threads=_threads(),
            embedding=embedding,
            **pooling,
            verbose=False,
        )
    except (ValueError, RuntimeError, OSError) as exc:
        reason = next((line for line in reversed(_RECENT_LOG) if "error" in line.lower()), "")
        raise LoadFailed(f"llama.cpp could not load {path} as a model ({reason or exc})") from None
    _MODELS[key] = llm
    return llm


class LoadFailed(Exception):
    """The file is not a model this llama.cpp can load (the message says why)."""


def is_chat_model(llm: Any) -> bool:
    return "tokenizer.chat_template" in (llm.metadata or {})


def pieces(llm: Any, request: dict[str, Any], result: dict[str, Any]) -> Generator[str, None, None]:
    """Text pieces from llama.cpp; ``result["finish"]`` is set to llama.cpp's finish reason.

    Sampling left unset (None) gets the model's defaults: llama.cpp's for chat models, the
    near-greedy values the completion format was tuned with for base models.
    """
    options = request["options"]
    chat = is_chat_model(llm)
    common: dict[str, Any] = {"max_tokens": options["max_tokens"], "stream": True}
    if options.get("seed") is not None:
        common["seed"] = options["seed"]
    temperature, top_p = options.get("temperature"), options.get("top_p")
    if temperature is not None or not chat:
        common["temperature"] = (
            temperature if temperature is not None else completion_format.TEMPERATURE
        )
    if top_p is not None or not chat:
        common["top_p"] = top_p if top_p is not None else completion_format.TOP_P
    if chat:
        chunks = llm.create_chat_completion(messages=request["messages"], **common)
        with contextlib.closing(chunks):
            for chunk in chunks:
                choice = chunk["choices"][0]
                result["finish"] = choice.get("finish_reason") or result.get("finish")
                text = choice["delta"].get("content")
                if text:
                    yield text
        return
    prompt = request["completion"]  # rendered by the parent from the plan's parts
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
            choice = chunk["choices"][0]
            result["finish"] = choice.get("finish_reason") or result.get("finish")
            text = held + choice["text"]
            if not started:
                text = text.lstrip()
                started = bool(text)
            body = text.rstrip()
            held = text[len(body) :]
            if body:
                yield body


def _fault(spec: str | None, sent: int) -> None:
    """Test hook: die like a native crash after ``sent`` pieces (``SIGILL@2``, ``abort@0``), or
    while loading a model (``SIGKILL@load``).

    Set through MEMO_SHELL_LLAMA_FAULT in the parent (which forwards it per request), so
    tests can prove the app survives what they cannot cause on demand on every CPU.
    """
    if not spec:
        return
    name, _, after = spec.partition("@")
    if after == "load" or sent < int(after or 0):
        return
    import resource

    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # a simulated crash leaves no core file
    if name == "abort":
        os.abort()
    os.kill(os.getpid(), getattr(signal, name))


def generate(out: IO[bytes], request: dict[str, Any]) -> None:
    llm = load(request["path"], request["n_ctx"])
    result: dict[str, Any] = {"finish": None}
    sent = 0
    fault = request.get("fault")
    _fault(fault, sent)
    stream = pieces(llm, request, result)
    with contextlib.closing(stream):  # closing it ends llama.cpp's generation
        for piece in stream:
            write_frame(out, {"piece": piece})
            sent += 1
            _fault(fault, sent)
            if request.get("id") in _stopped:
                result["finish"] = "cancelled"
                break
    write_frame(out, {"end": True, "finish": result["finish"], "generated": llm.n_tokens})


def handle(out: IO[bytes], request: dict[str, Any]) -> None:
    op = request.get("op")
    if op == "load":
        if request.get("fault", "").endswith("@load"):  # test hook: crash while loading
            _fault(request["fault"].removesuffix("@load"), 0)
        llm = load(request["path"], request["n_ctx"], bool(request.get("embedding")))
        write_frame(out, {"loaded": True, "chat": is_chat_model(llm)})
    elif op == "generate":
        generate(out, request)
    elif op == "embed":
        llm = load(request["path"], request["n_ctx"], embedding=True)
        vectors = [list(map(float, v)) for v in llm.embed(list(request["texts"]), normalize=True)]
        write_frame(out, {"vectors": vectors})
    else:
        write_frame(out, {"error": f"unknown request {op!r}"})


def _read_requests(stdin: IO[bytes], requests: queue.Queue[dict[str, Any]]) -> None:
    while True:
        message = read_frame(stdin)
        if message is None:  # the parent is gone (or closed us): nothing left to do
            os._exit(0)
        if message.get("op") == "stop":
            _stopped.add(message.get("id", -1))  # set.add is atomic: no lock needed
        else:
            requests.put(message)


def main() -> None:
    # The protocol gets the real stdout; fd 1 becomes stderr so that anything printed by
    # llama.cpp or a library cannot corrupt a frame.
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    stdin = sys.stdin.buffer
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl+C is for the app, which stops us
    request_amx_permission()
    import llama_cpp

    _hook_logging(llama_cpp)
    _without_extra_buffers(llama_cpp)
    requests: queue.Queue[dict[str, Any]] = queue.Queue()
    threading.Thread(target=_read_requests, args=(stdin, requests), daemon=True).start()
    write_frame(out, {"ready": True})
    while True:
        request = requests.get()
        try:
            handle(out, request)
        except LoadFailed as exc:
            write_frame(out, {"error": str(exc)})
        except Exception as exc:  # reported to the parent, which words it for the user
            write_frame(out, {"error": f"{type(exc).__name__}: {exc}", "raw": True})


if __name__ == "__main__":
    main()
