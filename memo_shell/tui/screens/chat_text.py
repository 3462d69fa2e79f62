"""What the chat says in words: the first-run welcome and a finished turn's status line."""

from __future__ import annotations

from typing import Any

from memo_shell.tui import fmt


def welcome_text(data_dir: str) -> str:
    # Always said: whether the built-in model ends up answering is only known later, and a
    # first-run user needs to know what it is before judging memo-shell by its answers.
    model_note = f"\n{TINY_MODEL_NOTE}\n"
    return f"""\
## Welcome to memo-shell

Everything you say here, and every reply, is remembered **on this computer only**, one file
per exchange, under:

`{data_dir}`

When you ask something, related memories are recalled and shown on the right, with the reason
each was recalled; **ctrl+o** shows the exact prompt the model received.

To forget: select a recalled memory and press **f**, or open the memory browser (**F3**) to
search, select and prune. **ctrl+t** turns memory off, or makes the chat private (nothing
kept), until you press it again. **F1** lists every key.
{model_note}"""


#: Said on first run and in the model picker while the built-in model answers.
TINY_MODEL_NOTE = (
    "Without another model set up, memo-shell answers with its built-in **Gemma 3 270M**, a "
    "tiny *base* model that is here so it works out of the box: fine for trying memory out, "
    "not for real answers. For a real "
    "model, press **F5** and pick or type one: an Ollama model (`ollama pull llama3.2`), "
    "LM Studio's server (`http://127.0.0.1:1234/v1`), or the path of a `.gguf` file."
)


def done_status(done: Any) -> str:
    """``gemma3:270m · llama-cpp · first token 210 ms · 1.3 s``."""
    return (
        f"{done.model} · {done.backend} · first token {fmt.seconds(done.first_piece_s)}"
        f" · {fmt.seconds(done.total_s)}"
        + (" · cut off at max_tokens" if getattr(done, "cut_off", False) else "")
    )
