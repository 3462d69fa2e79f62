"""What every importer shares: messages in, paired turns and problems out, stable ids.

An importer only knows its format: it reads a conversation and yields ``Message`` values in
conversation order (already restricted to the branch the user kept), or ``Problem`` values for
records it cannot read. Pairing a question with its reply, choosing the memory's time and id, and
checking that the result is a storable record happen here, once, for every format.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

from memo_shell import records
from memo_shell.records import InvalidRecord, Memory, Provenance

#: Longest conversation title kept in a session name (sessions are short fields).
MAX_TITLE = 120


@dataclass(frozen=True, slots=True)
class Message:
    """One message of a conversation, in the importer's words, before pairing."""

    role: str  # "user" or "assistant"; anything else was filtered out by the importer
    text: str
    id: str
    at: datetime | None = None
    model: str = ""
    meta: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Conversation:
    """One conversation's identity; ``at`` is the fallback time for messages without one."""

    source: str
    id: str
    title: str
    at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Problem:
    """A record that was skipped, and why (shown to the user; never aborts the import)."""

    reason: str
    conversation: str = ""
    message: str = ""

    def describe(self) -> str:
        where = " ".join(
            part
            for part in (
                f"conversation {self.conversation}" if self.conversation else "",
                f"message {self.message}" if self.message else "",
            )
            if part
        )
        return f"{where}: {self.reason}" if where else self.reason


def shown(value: object, limit: int = 40) -> str:
    """A value from the file, quoted and cut short, for a problem's reason."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def id_or_position(raw: object, position: int) -> str:
    """The export's own id for a conversation, or its place in the file (``#3``) without one."""
    return raw if isinstance(raw, str) and raw else f"#{position + 1}"


def session_name(conversation: Conversation) -> str:
    """The conversation's title plus a short id, so two chats titled "Hello" stay apart."""
    title = " ".join(conversation.title.split())[:MAX_TITLE] or "untitled"
    short = conversation.id[:8]
    return f"{title} · {short}" if short else title


def from_epoch(value: object) -> datetime | None:
    """Seconds (or milliseconds, if implausibly large) since the epoch to an aware UTC time."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    seconds = float(value)
    if seconds > 1e11:  # milliseconds: 1e11 seconds is the year 5138
        seconds /= 1000
    try:
        moment = datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError):
        return None
    return moment if moment.year >= 1970 else None


def from_iso(value: object) -> datetime | None:
    """An ISO 8601 string to an aware time (naive ones are taken as UTC: exports are UTC)."""
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def stable_id(at: datetime, *parts: str) -> str:
    """A memory id that is the same on every import of the same message.

    The time part is the original time (so imported memories sort and shard by when they were
    said); the random part is a hash of the source and the original ids, so importing the same
    export twice yields the same ids and the store's "already present" check skips them.
    """
    digest = hashlib.blake2b("\x1f".join(parts).encode("utf-8", "surrogatepass"), digest_size=10)
    millis = max(0, int(at.timestamp() * 1000))
    return records.id_from_parts(millis, int.from_bytes(digest.digest(), "big"))


def _turn(
    conversation: Conversation, question: Message | None, replies: list[Message]
) -> Memory | Problem:
    first = question or replies[0]
    at = first.at or next((r.at for r in replies if r.at), None) or conversation.at
    if at is None:
        return Problem("no time in the message or its conversation", conversation.id, first.id)
    meta = {
        "source": conversation.source,
        "conversation_id": conversation.id,
        "message_id": question.id if question else "",
    }
    if replies:
        meta["reply_id"] = replies[0].id
    if conversation.title:
        meta["title"] = conversation.title[: records.MAX_SHORT_FIELD]
    for message in (question, *replies):
        if message is not None:
            for key, value in message.meta.items():
                meta.setdefault(key, value)
    answer = "\n\n".join(r.text for r in replies if r.text)
    try:
        memory = records.Memory(
            id=stable_id(
                at,
                conversation.source,
                conversation.id,
                meta["message_id"],
                meta.get("reply_id", ""),
            ),
            session=session_name(conversation),
            created_at=at,
            user=records.clean_text(question.text if question else ""),
            assistant=records.clean_text(answer),
            model=next((r.model for r in replies if r.model), "")[: records.MAX_SHORT_FIELD],
            backend=conversation.source,
            provenance=Provenance.IMPORTED,
            meta={k: v[: records.MAX_SHORT_FIELD * 8] for k, v in meta.items() if v},
        )
        memory = records.validate(memory)
        records.encode(memory)  # too large for one record: say so here, not mid-batch
    except InvalidRecord as exc:
        return Problem(str(exc), conversation.id, first.id)
    return memory


def pair(conversation: Conversation, messages: Iterable[Message]) -> Iterator[Memory | Problem]:
    """Pair each user message with the assistant messages that follow it.

    Several assistant messages in a row (a reply split around tool calls) form one answer; a
    question with no reply is kept on its own; a reply with nothing asked before it (a greeting)
    is kept with an empty question, so nothing the user had is lost.
    """
    question: Message | None = None
    replies: list[Message] = []
    for message in messages:
        if message.role == "user":
            if question is not None or replies:
                yield _turn(conversation, question, replies)
            question, replies = message, []
        elif message.role == "assistant":
            replies.append(message)
    if question is not None or replies:
        yield _turn(conversation, question, replies)
