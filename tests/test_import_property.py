"""``mem import`` against arbitrary JSON Lines: no traceback, every valid line kept exactly once,
every invalid line reported by its number, and a second run of the same file stores nothing.

Lines are drawn from any Unicode (lone surrogates included, sent as JSON escapes), any JSON value
(huge integers, deep nesting, floats, nulls), raw non-UTF-8 bytes, and sizes up to the record
limit; the CLI runs in-process with ``catch_exceptions=False``, so a traceback fails the test.
"""

from __future__ import annotations

import json
import tempfile
import unicodedata
from pathlib import Path

from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import memo_shell
from memo_shell import records
from memo_shell.cli import cli

# Every code point, surrogates included: a lone one is valid JSON ("\ud800") but not UTF-8.
ANY_CHAR = st.characters(codec=None, exclude_categories=())
ANY_TEXT = st.text(ANY_CHAR, max_size=40)
JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()  # huge ones (past Python's int parsing limit) are among INVALID, as text
    | st.floats(allow_nan=False)
    | ANY_TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(ANY_TEXT, inner, max_size=4),
    max_leaves=12,
)
BIG = st.sampled_from([0, 1, 1000, 200_000, records.MAX_PAYLOAD_BYTES // 2])


@st.composite
def valid_line(draw: st.DrawFn) -> dict[str, object]:
    """A line that must be imported: surrogate-free text, known fields, sane sizes."""
    text = st.text(st.characters(codec="utf-8"), max_size=30)
    line: dict[str, object] = {"user": draw(text) + "x" * draw(BIG)}
    if draw(st.booleans()):
        line["assistant"] = draw(text)
    if draw(st.booleans()):
        line["at"] = draw(
            st.datetimes(
                min_value=__import__("datetime").datetime(1970, 1, 2),
                max_value=__import__("datetime").datetime(9999, 12, 30),
                timezones=st.just(__import__("datetime").UTC),
            )
        ).isoformat()
    if draw(st.booleans()):
        line["session"] = draw(st.text(st.characters(codec="utf-8"), min_size=1, max_size=10))
    if draw(st.booleans()):
        line["tags"] = draw(st.lists(st.text(st.characters(codec="utf-8"), max_size=8), max_size=3))
    if draw(st.booleans()):
        line["meta"] = draw(
            st.dictionaries(
                st.text(st.characters(codec="utf-8"), max_size=8),
                st.text(st.characters(codec="utf-8"), max_size=8),
                max_size=3,
            )
        )
    return line


INVALID = st.one_of(
    st.just(b"{not json"),
    st.just(b'{"user": "a\\ud800b"}'),  # lone surrogate in the text
    st.just(b'{"user": "x", "meta": {"n": ' + b"7" * 5000 + b"}}"),  # 5,000-digit integer
    st.just(b'{"user": "x", "asistant": "typo"}'),
    st.just(b'{"user": "x", "at": "1969-07-20T20:17:00Z"}'),
    st.just(b'{"user": 5}'),
    st.just(b"\xff\xfe not utf-8"),
    st.just(b"[" * 5000),
    st.just(json.dumps({"user": "y" * (records.MAX_PAYLOAD_BYTES + 1)}).encode()),
)

LINES = st.lists(
    st.one_of(
        valid_line().map(lambda obj: ("valid", json.dumps(obj).encode())),
        INVALID.map(lambda raw: ("invalid", raw)),
        JSON_VALUES.map(lambda value: ("any", json.dumps(value).encode())),
    ),
    min_size=1,
    max_size=12,
)


def _import(data_dir: Path, source: Path) -> tuple[int, dict[str, object], str]:
    result = CliRunner().invoke(
        cli,
        ["--data-dir", str(data_dir), "mem", "import", str(source), "--json"],
        catch_exceptions=False,
    )
    [document] = [json.loads(line) for line in result.stdout.splitlines()]
    return result.exit_code, document, result.stderr


def _clean(text: str) -> str:
    return unicodedata.normalize("NFC", text).replace("\x00", "")


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(LINES)
def test_any_jsonl_imports_valid_lines_once_and_reports_the_rest(
    lines: list[tuple[str, bytes]],
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        data_dir, source = Path(tmp) / "data", Path(tmp) / "in.jsonl"
        source.write_bytes(b"".join(raw.replace(b"\n", b" ") + b"\n" for _kind, raw in lines))

        code, report, stderr = _import(data_dir, source)
        assert "Traceback" not in stderr
        rejected = {r["line"] for r in report["rejected"]}  # type: ignore[union-attr]
        for number, (kind, _raw) in enumerate(lines, start=1):
            if kind == "valid":
                assert number not in rejected, (number, report["rejected"])
            elif kind == "invalid":
                assert number in rejected, number
        accepted = len(lines) - len(rejected)
        assert report["imported"] + report["already_present"] == accepted  # type: ignore[operator]
        assert code == (1 if rejected else 0)

        with memo_shell.open(data_dir, preload=False) as memories:
            stored = list(memories.iter_memories())
        assert len(stored) == report["imported"] == len({m.id for m in stored})
        users = {m.user for m in stored}
        for kind, raw in lines:
            if kind == "valid":
                assert _clean(json.loads(raw)["user"]) in users

        code, again, _stderr = _import(data_dir, source)
        assert again["imported"] == 0, "a second run of the same file stored memories again"
        assert again["already_present"] == accepted
        with memo_shell.open(data_dir, preload=False) as memories:
            assert memories.count() == len(stored)
