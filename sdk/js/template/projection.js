// A weft projection in JavaScript: counts activities per verb. Copy it and
// change `fold` and `query`.
//
//   sdk/js/build.sh projection sdk/js/template/projection.js verbs.wasm
//   weft module add projection verbs verbs.wasm --language javascript
//   curl -s http://127.0.0.1:8080/projections/verbs/count?verb=Note
//
// Rules of the sandbox: kv is the only state (never module globals); no
// console, Date or randomness (they trap); `throw "message"` is fold's
// error, and query throws {tag: "not-found" | "bad-request", val: message}.
import kv from "weft:module/kv@0.1.0";

const SEP = "\u001f"; // key separator that no id or URL contains

export function fold(activity) {
  const key = `count${SEP}${activity.verb}`;
  kv.set(key, String(Number(kv.get(key) ?? "0") + 1));
}

export function query(path, params) {
  if (path !== "count") {
    throw { tag: "not-found", val: `no query \`${path}\`: use \`count?verb=NAME\`` };
  }
  const verb = params.find(([k]) => k === "verb")?.[1];
  if (!verb) throw { tag: "bad-request", val: "the `verb` parameter is required, e.g. ?verb=Note" };
  return JSON.stringify({ verb, count: Number(kv.get(`count${SEP}${verb}`) ?? "0") });
}
