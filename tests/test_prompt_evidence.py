"""Only evidence enters the prompt, and the prompt says who said what."""

from __future__ import annotations

from memo_shell.api import Hit
from memo_shell.backends.base import estimate_tokens
from memo_shell.prompt import MEMORY_PREAMBLE, MIN_SHARE, build_prompt
from memo_shell.records import make_memory


def _hit(user: str, score: float, *, pinned: bool = False) -> Hit:
    return Hit(make_memory(user=user, assistant="ok", pinned=pinned), score, ["test"])


def _plan(hits: list[Hit]):
    return build_prompt(
        "What is my dog called?",
        hits,
        [],
        system="You are a test assistant.",
        budget_tokens=4000,
        count_tokens=estimate_tokens,
    )


def test_weak_memories_stay_out_of_the_prompt_with_a_reason() -> None:
    strong = _hit("My dog is called Biscuit.", 1.4)
    close = _hit("Biscuit loves the beach.", 1.4 * MIN_SHARE + 0.01)
    faint = _hit("We watched a film about dogs.", 1.4 * MIN_SHARE - 0.01)
    noise = _hit("The train was late.", 0.03)
    plan = _plan([strong, close, faint, noise])
    assert plan.included == [strong.memory.id, close.memory.id]
    assert plan.weak == [faint.memory.id, noise.memory.id]
    assert plan.dropped == []  # weak is not "no room"
    assert "best" in plan.left_out[faint.memory.id]
    assert "floor" in plan.left_out[noise.memory.id]
    system = plan.messages[0]["content"]
    assert "film about dogs" not in system and "train was late" not in system
    assert "too weak" in plan.render()


def test_pinned_memories_are_evidence_whatever_their_score() -> None:
    strong = _hit("My dog is called Biscuit.", 1.4)
    pin = _hit("Always answer in British English.", 0.0, pinned=True)
    plan = _plan([strong, pin])
    assert pin.memory.id in plan.included


def test_the_prompt_labels_user_statements_and_model_claims() -> None:
    plan = _plan([_hit("My dog is called Biscuit.", 1.0)])
    assert MEMORY_PREAMBLE in plan.messages[0]["content"]
    assert "'User:' is what the user said" in MEMORY_PREAMBLE
    assert "'Assistant:'" in MEMORY_PREAMBLE and "may be wrong" in MEMORY_PREAMBLE
