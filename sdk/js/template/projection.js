// A weft projection in JavaScript (weft:module@0.2.0): counts activities
// per verb. Copy it and change `changes` and `query`.
//
//   sdk/js/build.sh projection sdk/js/template/projection.js verbs.wasm
//   weft module add projection verbs verbs.wasm --language javascript
//   curl -s http://127.0.0.1:8080/projections/verbs/count?verb=Note
//
// A fold collects its writes and hands them to kv.write in one call, only
// when it succeeds; foldBatch folds each activity the same way, in order.
// Rules of the sandbox: kv is the only state (never module globals); no
// console, Date or randomness (they trap); `throw "message"` is fold's
// error, and query throws {tag: "not-found" | "bad-request", val: message}.
import kv from "weft:module/kv@0.2.0";

const SEP = "\u001f"; // key separator that no id or URL contains

// The writes that fold `activity`; throw "why" to fail it.
function changes(activity) {
  const key = `count${SEP}${activity.verb}`;
  return [{ tag: "set", val: [key, String(Number(kv.get(key) ?? "0") + 1)] }];
}

export function fold(activity) {
  kv.write(changes(activity));
}

export function foldBatch(activities) {
  return activities.map((activity) => {
    try {
      fold(activity);
      return { tag: "ok" };
    } catch (e) {
      if (typeof e !== "string") throw e; // anything but fold's error traps, as in fold
      return { tag: "err", val: e };
    }
  });
}

export function query(path, params) {
  if (path !== "count") {
    throw { tag: "not-found", val: `no query \`${path}\`: use \`count?verb=NAME\`` };
  }
  const verb = params.find(([k]) => k === "verb")?.[1];
  if (!verb) throw { tag: "bad-request", val: "the `verb` parameter is required, e.g. ?verb=Note" };
  return JSON.stringify({ verb, count: Number(kv.get(`count${SEP}${verb}`) ?? "0") });
}
