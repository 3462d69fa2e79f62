"""Sync tools' file names: conflict copies (to merge) and their temp files (to leave alone).

When two devices change the same file before they meet, a sync tool keeps one version under
the file's name and the other beside it, renamed. memo-shell recognises the copies so it can
merge them into the record (``memo_shell.sync``) instead of calling them damaged:

- Syncthing: ``<stem>.sync-conflict-YYYYMMDD-HHMMSS-<DEVICE7><ext>``
- Dropbox: ``<stem> (conflicted copy YYYY-MM-DD)<ext>``, ``<stem> (Ann's conflicted copy …)<ext>``
- Nextcloud / ownCloud: ``<stem> (conflicted copy YYYY-MM-DD HHMMSS)<ext>``
- Unison (``copyonconflict``) and others: ``<stem> (conflict on <host> …)<ext>``,
  ``<name>.unison.conflict``

A trailing `` (2)``-style counter (a second copy of the same day) is accepted too.
"""

from __future__ import annotations

import re

_EXT = r"(?P<ext>\.[A-Za-z0-9]+)?"
_COUNTER = r"(?: \(\d+\))?"
_PATTERNS = (
    re.compile(r"(?P<stem>[^/]+?)\.sync-conflict-\d{8}-\d{6}-[A-Z0-9]{7}" + _EXT),
    re.compile(r"(?P<stem>[^/]+?) \((?:[^()]*'s )?conflicted copy[^()]*\)" + _COUNTER + _EXT),
    re.compile(r"(?P<stem>[^/]+?) \(conflict(?: on| from| with)?[^()]*\)" + _COUNTER + _EXT),
    re.compile(r"(?P<stem>[^/]+?)(?P<ext>\.memo)?\.unison\.conflict"),
)

#: Files a sync tool writes while it receives one: Syncthing's ``.syncthing.<name>.tmp``
#: (``~syncthing~<name>.tmp`` on Windows), Unison's ``.unison.<name>.<hash>.unison.tmp``,
#: Nextcloud's ``.<name>.~<hex>``, Dropbox's ``.~<name>``. They are the tool's own to finish or
#: remove: memo-shell never moves or deletes one unless asked to (``doctor --fix``, when stale).
SYNC_TEMP = re.compile(
    r"\.syncthing\..+\.tmp|~syncthing~.+\.tmp|\.unison\..+\.unison\.tmp|\..+\.~[0-9a-f]+|\.~.+"
)


def conflict_original(name: str) -> str | None:
    """The name a conflict copy stands for (``<id>.memo`` for a record's), or None."""
    for pattern in _PATTERNS:
        match = pattern.fullmatch(name)
        if match is not None:
            return match.group("stem") + (match.group("ext") or "")
    return None


def is_sync_temp(name: str) -> bool:
    return SYNC_TEMP.fullmatch(name) is not None
