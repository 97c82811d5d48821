"""wordcount: a weft projection, in Python, counting words per actor in Notes.

Key layout (U+001F separates parts, as in the Rust projections):

| key                      | value                          |
|--------------------------|--------------------------------|
| words<US>{actor}         | total words in actor's notes   |
| notes<US>{actor}         | notes counted                  |
| word<US>{actor}<US>{w}   | occurrences of word w          |

fold: a Create of a Note (`verb == "Note"`, `kind == "Create"`) by `actor`;
everything else is ignored (ok).

query: path `actor`, `?actor=<url>` ->
  {"actor": ..., "notes": n, "words": n, "top": [[word, count], ...]}
(at most 10, by count descending then word ascending).

The fold is deterministic: no clock, no randomness, no module globals used as
state; the kv store is the only state.
"""

import json
import re
from collections import Counter

from componentize_py_types import Err
import wit_world
from wit_world.imports import kv
from wit_world.imports.types import (
    Activity,
    QueryError_BadRequest,
    QueryError_NotFound,
)

SEP = "\u001f"
TOP = 10
SCAN_LIMIT = 1000  # the host caps a scan at 1000 entries
MAX_KEY = 1024  # the host traps on keys longer than this (bytes)

_TAG = re.compile(r"<[^>]*>")
# Runs of Unicode letters or digits (\w without the underscore).
_WORD = re.compile(r"[^\W_]+")


def _key(*parts: str) -> str:
    return SEP.join(parts)


def _words(content: str) -> list:
    text = _TAG.sub(" ", content).lower()
    return _WORD.findall(text)


def _int(value) -> int:
    if value is None:
        return 0
    try:
        return int(value)
    except ValueError:
        return 0


def _add(key: str, n: int) -> None:
    kv.set(key, str(_int(kv.get(key)) + n))


class WitWorld(wit_world.WitWorld):
    def fold(self, activity: Activity) -> None:
        # Any exception other than Err traps the instance (componentize-py
        # then tries to import `traceback` from a filesystem the stubs lack),
        # which the node reports as an opaque wasm backtrace: turn it into
        # `err(message)` so the projection's status says what went wrong.
        try:
            self._fold(activity)
        except Err:
            raise
        except Exception as e:
            raise Err(f"{type(e).__name__}: {e}")

    def _fold(self, activity: Activity) -> None:
        if activity.verb != "Note" or activity.kind != "Create":
            return
        try:
            doc = json.loads(activity.json)
        except ValueError as e:
            # `result<_, string>`: raising Err(str) returns err(str).
            raise Err(f"activity {activity.id} is not JSON: {e}")
        obj = doc.get("object") if isinstance(doc, dict) else None
        if not isinstance(obj, dict):
            return
        content = obj.get("content")
        if not isinstance(content, str):
            content = ""
        actor = activity.actor
        words = _words(content)

        counts = Counter(words)  # counted in C: far less fuel than a Python loop

        kept = 0
        # Sorted so the order of kv calls never depends on anything but input.
        for w in sorted(counts):
            key = _key("word", actor, w)
            if len(key.encode("utf-8")) > MAX_KEY:
                continue  # a "word" this long would make the host trap
            _add(key, counts[w])
            kept += counts[w]
        _add(_key("words", actor), kept)
        _add(_key("notes", actor), 1)

    def query(self, path: str, params: list) -> str:
        if path != "actor":
            raise Err(QueryError_NotFound(
                f"no query `{path}`: use `actor?actor=<url>`"))
        actor = None
        for name, value in params:
            if name == "actor":
                actor = value
        if not actor:
            raise Err(QueryError_BadRequest("missing parameter `actor`"))

        prefix = _key("word", actor, "")
        entries = []
        after = None
        while True:
            page = kv.scan(prefix, after, SCAN_LIMIT)
            for k, v in page:
                entries.append((k[len(prefix):], _int(v)))
            if len(page) < SCAN_LIMIT:
                break
            after = page[-1][0]
        entries.sort(key=lambda e: (-e[1], e[0]))
        return json.dumps({
            "actor": actor,
            "notes": _int(kv.get(_key("notes", actor))),
            "words": _int(kv.get(_key("words", actor))),
            "top": [[w, c] for w, c in entries[:TOP]],
        })
