"""wordcount: a weft projection, in Python, counting words per actor in Notes
(world `projection` of weft:module@0.2.0).

Key layout (U+001F separates parts, as in the Rust projections):

| key                      | value                          |
|--------------------------|--------------------------------|
| words<US>{actor}         | total words in actor's notes   |
| notes<US>{actor}         | notes counted                  |
| word<US>{actor}<US>{w}   | occurrences of word w          |

fold: a Create of a Note (`verb == "Note"`, `kind == "Create"`) by `actor`,
whose `object.content` it reads from the activity's JSON (`log.get` of its
id); everything else is ignored (ok). A fold hands its writes to `kv.write`
in one call, and only when it succeeds; `fold_batch` folds each activity of a
run the same way.

query: path `actor`, `?actor=<url>` ->
  {"actor": ..., "notes": n, "words": n, "top": [[word, count], ...]}
(at most 10, by count descending then word ascending).

The fold is deterministic: no clock, no randomness, no module globals used as
state; the kv store is the only state.
"""

import json
import re
from collections import Counter

from componentize_py_types import Err, Ok
import wit_world
from wit_world.imports import kv, log
from wit_world.imports.types import (
    Activity,
    Change_Set,
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


def _add(changes: list, key: str, n: int) -> None:
    # Every key a fold adds to is a different one, so the store still holds
    # its value from before the fold.
    changes.append(Change_Set((key, str(_int(kv.get(key)) + n))))


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

    def fold_batch(self, activities: list) -> list:
        results = []
        for activity in activities:
            try:
                self.fold(activity)
                results.append(Ok(None))
            except Err as e:
                results.append(e)
        return results

    def _fold(self, activity: Activity) -> None:
        if activity.verb != "Note" or activity.kind != "Create":
            return
        text = log.get(activity.id)
        if text is None:
            raise Err(f"activity {activity.id} is not in the log")
        try:
            doc = json.loads(text)
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

        changes = []
        kept = 0
        # Sorted so the order of writes never depends on anything but input.
        for w in sorted(counts):
            key = _key("word", actor, w)
            if len(key.encode("utf-8")) > MAX_KEY:
                continue  # a "word" this long would make the host trap
            _add(changes, key, counts[w])
            kept += counts[w]
        _add(changes, _key("words", actor), kept)
        _add(changes, _key("notes", actor), 1)
        kv.write(changes)

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
