"""A weft projection in Python (weft:module@0.2.0): counts activities per
verb. Copy this folder, rename the module, and change `changes` and `query`.

    sdk/python/build.sh projection sdk/python/template app app.wasm
    weft module add projection verbs app.wasm --language python
    curl -s http://127.0.0.1:8080/projections/verbs/count?verb=Note

A fold collects its writes and hands them to `kv.write` in one call, only
when it succeeds; `fold_batch` folds each activity the same way, in order.
Rules of the sandbox: the kv store is the only state (never module globals:
the node reuses a warm instance and a rebuild must give the same answer);
there is no print, clock, randomness or file (they trap); import everything
at the top; raise `Err(...)` to return an error.
"""

import json

from componentize_py_types import Err, Ok
import wit_world
from wit_world.imports import kv
from wit_world.imports.types import (
    Activity,
    Change_Set,
    QueryError_BadRequest,
    QueryError_NotFound,
)

SEP = "\u001f"  # key separator that no id or URL contains


def changes(activity: Activity) -> list:
    """The writes that fold `activity`; raise Err("why") to fail it."""
    key = "count" + SEP + activity.verb
    return [Change_Set((key, str(int(kv.get(key) or "0") + 1)))]


class WitWorld(wit_world.WitWorld):
    def fold(self, activity: Activity) -> None:
        kv.write(changes(activity))

    def fold_batch(self, activities: list) -> list:
        results = []
        for activity in activities:
            try:
                self.fold(activity)
                results.append(Ok(None))
            except Err as e:
                results.append(e)
        return results

    def query(self, path: str, params: list) -> str:
        if path != "count":
            raise Err(QueryError_NotFound(f"no query `{path}`: use `count?verb=NAME`"))
        verb = dict(params).get("verb")
        if not verb:
            raise Err(QueryError_BadRequest("the `verb` parameter is required, e.g. ?verb=Note"))
        return json.dumps({"verb": verb, "count": int(kv.get("count" + SEP + verb) or "0")})
