"""``memo-shell ask QUESTION``: one turn without the TUI, streamed to stdout and remembered.

stdout carries only the answer (or, with ``--json``, one JSON document), so ``ask`` composes
with pipes; which backend was picked, the prompt (``--show-prompt``) and errors go to stderr.
A question that is not answered is not stored; ``ask`` says so and, for a question read from
stdin (which the user may not have elsewhere), shows it back so it can be retried.
"""

from __future__ import annotations

import asyncio
import sys
from typing import TYPE_CHECKING, Any, BinaryIO

import click

from memo_shell.cli.context import CliContext
from memo_shell.cli.output import Output, json_option
from memo_shell.config import BACKENDS
from memo_shell.errors import MemoShellError
from memo_shell.text import printable

if TYPE_CHECKING:
    from memo_shell.backends import Backend

#: Questions read from stdin that are at most this long are echoed back when not answered.
ECHO_LIMIT = 4000


def read_question(argument: str, stdin: BinaryIO) -> str:
    """The question: the argument, or stdin for ``-`` (read with a cap, never unbounded)."""
    from memo_shell.shell import MAX_QUESTION_BYTES, check_question

    if argument != "-":
        return check_question(argument)
    data = stdin.read(MAX_QUESTION_BYTES + 1)
    if len(data) > MAX_QUESTION_BYTES:
        raise click.ClickException(
            f"the question on stdin is larger than {MAX_QUESTION_BYTES // 2**20} MiB, more than"
            " any local model's context; send a shorter excerpt (nothing was stored)"
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise click.ClickException("the question on stdin is not UTF-8 text") from None
    return check_question(text.strip("\n"))


def _not_stored(question: str, from_stdin: bool) -> str:
    """The sentence that follows an error: the question is safe, here is how to retry."""
    if not from_stdin:
        return "Your question was not stored; run the same command again to retry."
    if len(question) <= ECHO_LIMIT:
        return f"Your question was not stored; here it is for a retry:\n{question}"
    return (
        f"Your question ({len(question):,} characters from stdin) was not stored;"
        " send the same input again to retry."
    )


async def _run(
    ctx: CliContext,
    out: Output,
    question: str,
    *,
    session: str,
    use_memory: bool,
    show_prompt: bool,
) -> dict[str, Any]:
    from memo_shell.backends import choose_backend
    from memo_shell.shell import Done, Piece, Recalled, Shell

    choice = await choose_backend(ctx.settings)
    out.note(choice.reason, style="dim")
    backend: Backend = choice.backend
    result: dict[str, Any] = {}
    try:
        with ctx.open_memories(preload=use_memory) as memories:
            shell = Shell(memories, backend, ctx.settings, session=session)
            shell.use_memory = use_memory
            async for event in shell.turn(question):
                if isinstance(event, Recalled):
                    result["recalled"] = list(event.plan.included)
                    result["recent"] = list(event.plan.recent)
                    if show_prompt:
                        rendered = _prompt_text(backend, event.plan)
                        result["prompt"] = rendered
                        if not out.as_json:
                            out.note(rendered, style="dim")
                elif isinstance(event, Piece):
                    if not out.as_json:
                        sys.stdout.write(printable(event.text))  # a reply may carry ESC
                        sys.stdout.flush()
                        result["streamed"] = True
                elif isinstance(event, Done):
                    if not out.as_json:
                        sys.stdout.write("\n")
                    result.update(
                        answer=event.answer,
                        id=event.memory_id,
                        backend=event.backend,
                        model=event.model,
                        cut_off=event.cut_off,
                    )
                    if event.cut_off:
                        out.note(
                            f"The reply was cut off at max_tokens ({ctx.settings.max_tokens});"
                            " it is stored marked as such. Raise max_tokens for longer replies."
                        )
    finally:
        if "streamed" in result and "id" not in result:
            sys.stdout.write("\n")  # end a partial answer's line before the error
        await backend.aclose()
    return result


def _prompt_text(backend: Backend, plan: Any) -> str:
    """The plan as messages and, for base models, the exact text the model reads."""
    text = plan.render()
    render = getattr(backend, "render_prompt", None)
    exact = render(plan) if render is not None else None
    if exact is not None:
        text += f"\n── exact text sent to {backend.model} ──\n{exact}"
    return text


@click.command()
@click.argument("question")
@click.option("--backend", type=click.Choice(BACKENDS), help="Model backend for this question.")
@click.option("--model", help="Model name (Ollama/OpenAI), or a GGUF file or name (llama-cpp).")
@click.option("--session", "-s", default="default", show_default=True, help="Conversation name.")
@click.option("--no-memory", is_flag=True, help="Do not recall memories for this question.")
@click.option("--show-prompt", is_flag=True, help="Print the exact prompt (stderr; in --json).")
@json_option
@click.pass_obj
def ask(
    ctx: CliContext,
    question: str,
    backend: str | None,
    model: str | None,
    session: str,
    no_memory: bool,
    show_prompt: bool,
    as_json: bool,
) -> None:
    """Ask QUESTION ("-" reads it from stdin) with your memories recalled; the turn is stored.

    The answer streams to stdout. --json prints {"answer", "id", "backend", "model",
    "recalled"} instead (with "cut_off": true when the reply stopped at max_tokens).
    """
    out = Output(as_json)
    text = read_question(question, sys.stdin.buffer)
    ctx.settings = ctx.settings.with_overrides(backend=backend, model=model)
    use_memory = ctx.settings.use_memory and not no_memory
    try:
        result = asyncio.run(
            _run(ctx, out, text, session=session, use_memory=use_memory, show_prompt=show_prompt)
        )
    except KeyboardInterrupt:
        raise click.ClickException(
            "cancelled; nothing was stored. " + _not_stored(text, question == "-")
        ) from None
    except MemoShellError as exc:
        raise click.ClickException(f"{exc}\n{_not_stored(text, question == '-')}") from exc
    if as_json:
        out.document(
            {
                "answer": result["answer"],
                "id": result["id"],
                "backend": result["backend"],
                "model": result["model"],
                "recalled": result.get("recalled", []),
                "recent": result.get("recent", []),
                **({"prompt": result["prompt"]} if "prompt" in result else {}),
                **({"cut_off": True} if result.get("cut_off") else {}),
            }
        )
