"""Import benchmark: a generated ChatGPT export of N messages, streamed vs loaded whole.

    python bench/importers.py                      # 100k messages, as in the issue
    python bench/importers.py --messages 10000     # a quick look

Figures, each beside its baseline from the same run:
- parse: messages/s and MB/s of ``importers.turns`` (streaming with ijson, pairing, ids), beside
  ``json.load`` of the same file, the floor any importer that loads the whole file pays;
- peak Python memory (tracemalloc) of the streaming parse beside that of ``json.load`` alone:
  streaming should stay flat as the export grows, ``json.load`` grows with the file;
- the whole ``memo-shell mem import --from chatgpt`` as a process into an empty store: turns/s and
  peak RSS (ru_maxrss of the child), and the same import again (everything already present).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
import tracemalloc
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from memo_shell import importers  # noqa: E402

WORDS = [
    "lisbon",
    "tram",
    "pastry",
    "weather",
    "rust",
    "lifetime",
    "borrow",
    "starter",
    "flour",
    "haiku",
    "rain",
    "model",
]


def _text(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(words))


def generate(path: Path, messages: int, per_conversation: int = 50, seed: int = 7) -> int:
    """Write a ChatGPT-shaped export with ``messages`` user+assistant messages; returns bytes.

    Written conversation by conversation, so generating a huge export needs little memory too.
    Every conversation has a hidden system node, a regenerated (abandoned) reply, and an image.
    """
    rng = random.Random(seed)
    t = 1_600_000_000.0
    with open(path, "w", encoding="utf-8") as out:
        out.write("[")
        for c in range((messages + per_conversation - 1) // per_conversation):
            mapping: dict[str, object] = {
                "root": {"id": "root", "message": None, "parent": None, "children": ["sys"]}
            }
            mapping["sys"] = {
                "id": "sys",
                "parent": "root",
                "children": [],
                "message": {
                    "id": "sys",
                    "author": {"role": "system"},
                    "content": {"content_type": "text", "parts": [""]},
                    "metadata": {"is_visually_hidden_from_conversation": True},
                },
            }
            parent = "sys"
            for i in range(min(per_conversation, messages - c * per_conversation)):
                role = "user" if i % 2 == 0 else "assistant"
                node = f"c{c}m{i}"
                t += rng.uniform(5, 600)
                parts: list[object] = [_text(rng, rng.randint(8, 60))]
                if i == 0:
                    parts.insert(0, {"content_type": "image_asset_pointer", "asset_pointer": "x"})
                mapping[node] = {
                    "id": node,
                    "parent": parent,
                    "children": [],
                    "message": {
                        "id": node,
                        "author": {"role": role, "name": None, "metadata": {}},
                        "create_time": t,
                        "content": {
                            "content_type": "multimodal_text" if i == 0 else "text",
                            "parts": parts,
                        },
                        "status": "finished_successfully",
                        "metadata": {"model_slug": "gpt-4o"} if role == "assistant" else {},
                        "recipient": "all",
                    },
                }
                mapping[parent]["children"].append(node)  # type: ignore[index]
                if role == "assistant" and i == 1:  # an abandoned regeneration beside it
                    alt = f"{node}alt"
                    mapping[alt] = {**mapping[node], "id": alt, "children": []}  # type: ignore[dict-item]
                    mapping[parent]["children"].insert(0, alt)  # type: ignore[index]
                parent = node
            conversation = {
                "title": _text(rng, 4),
                "create_time": t,
                "update_time": t,
                "conversation_id": f"conv-{c:08d}",
                "id": f"conv-{c:08d}",
                "current_node": parent,
                "mapping": mapping,
            }
            out.write(("," if c else "") + json.dumps(conversation))
        out.write("]")
    return path.stat().st_size


def parse_streaming(path: Path) -> int:
    return sum(1 for item in importers.turns("chatgpt", path) if not isinstance(item, Exception))


def parse_whole(path: Path) -> int:
    with open(path, "rb") as handle:
        return len(json.load(handle))


def timed(fn, path: Path) -> tuple[float, int]:  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    result = fn(path)
    return time.perf_counter() - start, result


def peak(fn, path: Path) -> int:  # type: ignore[no-untyped-def]
    tracemalloc.start()
    try:
        fn(path)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def cli_import(path: Path, data: Path) -> tuple[float, dict[str, object], int]:
    """Run the real command; returns (seconds, its JSON report, peak RSS of the child in bytes)."""
    # VmHWM, not ru_maxrss: Linux carries the parent's high-water mark through fork and exec
    code = (
        "import re, sys\n"
        "from memo_shell.cli import main\n"
        "try:\n"
        f"    main(['--data-dir', {str(data)!r}, 'mem', 'import', '--from', 'chatgpt', "
        f"{str(path)!r}, '--json'])\n"
        "finally:\n"
        "    status = open('/proc/self/status').read()\n"
        "    print(int(re.search(r'VmHWM:\\s+(\\d+)', status).group(1)) * 1024, file=sys.stderr)\n"
    )
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        check=False,
    )
    seconds = time.perf_counter() - start
    report = json.loads(done.stdout)
    rss = int(done.stderr.strip().splitlines()[-1])
    return seconds, report, rss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=100_000)
    args = parser.parse_args()
    mb = 1e6
    with tempfile.TemporaryDirectory() as tmp:
        export = Path(tmp) / "conversations.json"
        size = generate(export, args.messages)
        print(f"export: {args.messages} messages, {size / mb:.1f} MB")
        stream_s, turns = timed(parse_streaming, export)
        whole_s, conversations = timed(parse_whole, export)
        print(
            f"parse (streaming, paired, ids): {stream_s:.2f} s = {args.messages / stream_s:,.0f} "
            f"messages/s, {size / mb / stream_s:.1f} MB/s -> {turns} turns"
        )
        print(f"json.load baseline (parse only): {whole_s:.2f} s, {conversations} conversations")
        stream_peak, whole_peak = peak(parse_streaming, export), peak(parse_whole, export)
        archive = Path(tmp) / "export.zip"
        with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as z:
            z.write(export, "conversations.json")
        zip_peak = peak(parse_streaming, archive)
        print(
            f"peak Python memory: streaming {stream_peak / mb:.1f} MB (from the .zip "
            f"{zip_peak / mb:.1f} MB) vs json.load {whole_peak / mb:.1f} MB "
            f"(file {size / mb:.1f} MB)"
        )
        seconds, report, rss = cli_import(export, Path(tmp) / "data")
        print(
            f"mem import --from chatgpt (process): {seconds:.1f} s, "
            f"{report['imported'] / seconds:,.0f} turns/s, imported {report['imported']}, "
            f"peak RSS {rss / mb:.0f} MB"
        )
        seconds, report, rss = cli_import(export, Path(tmp) / "data")
        print(
            f"again (all present): {seconds:.1f} s, already present {report['already_present']},"
            f" imported {report['imported']}, peak RSS {rss / mb:.0f} MB"
        )


if __name__ == "__main__":
    main()
