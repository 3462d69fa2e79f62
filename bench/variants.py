"""Real-chat variants of LoCoMo: the same conversations and questions, written the way people chat.

LoCoMo's dialogues are LLM-written: tidy capitalisation, no typos, one message per turn, dates
spelled "7 May 2023". Real messaging data has numeric dates in the writer's locale, lower-case
messages, typos, names spelled differently by different people (Jon/John, Mel/Melanie), messages
split in two or sent as one, and emoji. ``transform`` applies those, seeded, so recall can be
measured on both and a signal that only helps clean text shows up.

A merged memory carries both dia ids joined by ``|``; a split turn keeps its id on both halves.
"""

from __future__ import annotations

import random
import re
from dataclasses import replace
from datetime import timedelta
from typing import Any

from memo_shell.extract import MONTHS  # the names the analyzer knows, so variants use them too

_MON = {m: i + 1 for i, m in enumerate(MONTHS)} | {m[:3]: i + 1 for i, m in enumerate(MONTHS)}
_M = "(" + "|".join(sorted(_MON, key=len, reverse=True)) + r")\.?"
_DMY = re.compile(rf"\b(\d{{1,2}})(?:st|nd|rd|th)?\s+(?:of\s+)?{_M},?\s+((?:19|20)\d\d)\b", re.I)
_MDY = re.compile(rf"\b{_M}\s+(\d{{1,2}})(?:st|nd|rd|th)?,?\s+((?:19|20)\d\d)\b", re.I)

#: Spelling and nickname variants of LoCoMo dev's speakers (and a few common ones).
NICKNAMES = {
    "Caroline": ["Carol", "Caro", "Karoline"],
    "Melanie": ["Mel", "Melany", "Mellanie"],
    "Jon": ["John", "Jonny"],
    "Gina": ["Jina", "Ginna"],
    "John": ["Jon", "Johnny"],
    "Maria": ["Mariah", "Marie"],
    "Joanna": ["Jo", "Johanna", "Joana"],
    "Nate": ["Nathan", "Nat"],
    "Tim": ["Timmy", "Timothy"],
}
EMOJI = ["😂", "❤️", "👍", "🙏", "😊", "🎉", "😅", "🔥", "😢", "🥳"]
LOCALES = {
    "eu": "{d:02d}.{m:02d}.{y}",  # Germany, Czechia, Norway, Russia...
    "us": "{m:02d}/{d:02d}/{y}",
    "iso-slash": "{y}/{m:02d}/{d:02d}",  # Japan, China
    "uk": "{d:02d}/{m:02d}/{y}",
}


def numeric_dates(text: str, fmt: str) -> str:
    """ "7 May 2023" / "May 7, 2023" -> the locale's numeric form."""

    def sub(d: int, m: int, y: int) -> str:
        return fmt.format(d=d, m=m, y=y)

    text = _DMY.sub(lambda x: sub(int(x[1]), _MON[x[2].lower()], int(x[3])), text)
    return _MDY.sub(lambda x: sub(int(x[2]), _MON[x[1].lower()], int(x[3])), text)


def typo(word: str, rng: random.Random) -> str:
    """One keyboard slip: swap, drop or double a letter (never the first)."""
    if len(word) < 5:
        return word
    i = rng.randrange(1, len(word) - 1)
    kind = rng.randrange(3)
    if kind == 0:
        return word[:i] + word[i + 1] + word[i] + word[i + 2 :]
    if kind == 1:
        return word[:i] + word[i + 1 :]
    return word[:i] + word[i] + word[i:]


def rename(text: str, rng: random.Random, p: float) -> str:
    """Each mention of a known name becomes a variant with probability ``p``."""

    def sub(m: re.Match[str]) -> str:
        name = m.group(0)
        return rng.choice(NICKNAMES[name]) if rng.random() < p else name

    return re.sub(r"\b(" + "|".join(NICKNAMES) + r")\b", sub, text)


def messy(text: str, rng: random.Random, *, typos: float, lower: float, emoji: float) -> str:
    words = text.split(" ")
    words = [typo(w, rng) if w.isalpha() and rng.random() < typos else w for w in words]
    text = " ".join(words)
    if rng.random() < lower:
        text = text.lower()
    if rng.random() < emoji:
        text = f"{text} {rng.choice(EMOJI)}"
    return text


def transform(conversations: list[Any], locale: str, seed: int = 1) -> list[Any]:
    """A real-chat copy of ``bench.locomo.load``'s output (Turn and Question objects)."""
    rng = random.Random(f"{seed}-{locale}")
    fmt = LOCALES[locale]
    out = []
    for sample_id, turns, questions in conversations:
        new_turns = []
        i = 0
        while i < len(turns):
            t = turns[i]
            speaker, _, body = t.text.partition(": ")
            body = rename(numeric_dates(body, fmt), rng, 0.2)
            body = messy(body, rng, typos=0.03, lower=0.5, emoji=0.15)
            r = rng.random()
            sentences = re.split(r"(?<=[.!?])\s+", body)
            if r < 0.15 and len(sentences) >= 2:  # sent as two messages
                cut = rng.randrange(1, len(sentences))
                new_turns.append(replace(t, text=f"{speaker}: {' '.join(sentences[:cut])}"))
                rest = " ".join(sentences[cut:])
                new_turns.append(
                    replace(t, text=f"{speaker}: {rest}", at=t.at + timedelta(milliseconds=500))
                )
            elif r > 0.92 and i + 1 < len(turns) and turns[i + 1].session == t.session:
                nxt = turns[i + 1]  # two messages stored as one memory
                s2, _, b2 = nxt.text.partition(": ")
                b2 = messy(
                    rename(numeric_dates(b2, fmt), rng, 0.2), rng, typos=0.03, lower=0.5, emoji=0.15
                )
                new_turns.append(
                    replace(
                        t, dia_id=f"{t.dia_id}|{nxt.dia_id}", text=f"{speaker}: {body}\n{s2}: {b2}"
                    )
                )
                i += 1
            else:
                new_turns.append(replace(t, text=f"{speaker}: {body}"))
            i += 1
        new_questions = [
            replace(
                q,
                text=messy(
                    rename(numeric_dates(q.text, fmt), rng, 0.5),
                    rng,
                    typos=0.02,
                    lower=0.3,
                    emoji=0.0,
                ),
            )
            for q in questions
        ]
        out.append((sample_id, new_turns, new_questions))
    return out
