// weft projection `tally`: world `projection` of weft:module@0.2.0, built
// with componentize-qjs (see build.sh). Counts the votes of each Poll.
//
// kv is the only state (never module globals: the node keeps a warm
// instance between calls, and a rebuild must give the same answers).
// Keys (␟ is U+001F, which no id, actor or accepted option contains):
//
//   poll␟{poll id}             {"name":…, "options":[…]}
//   voters␟{poll id}           number of actors who voted
//   vote␟{poll id}␟{actor}     that actor's current choice
//   count␟{poll id}␟{choice}   votes for that choice ("0" when none)
//
// A later Vote by the same actor moves their vote. A Vote folded before its
// Poll (possible with backfill) records the Poll from `log.get` first; a
// Poll folded again is ignored. Malformed or unknown votes are ignored (the
// Vote verb rejects them at publication).
//
// A fold reads the activity's JSON with `log.get(activity.id)` (only for
// the verbs it folds), collects its writes (reading through them) and hands
// them to `kv.write` in one call, only when it succeeds; `foldBatch` folds
// each activity of a run the same way, in order.
//
// Query: path `poll`, `?id=<poll id>` -> {"id","name","counts":{…},"voters"}.
// fold's `result<_, string>` and query's `result<string, query-error>` are
// return/throw: returning is ok; a thrown string (fold) or a thrown
// {tag:"not-found"|"bad-request", val:message} (query) is the error.
import kv from "weft:module/kv@0.2.0";
import log from "weft:module/log@0.2.0";

const SEP = "\u001f";
const key = (...parts) => parts.join(SEP);
const isSafe = (s) => typeof s === "string" && s !== "" && !/[\u0000-\u001f\u007f]/.test(s);

function getNumber(store, k) {
  const v = store.get(k); // option<string> -> string | null
  return v === null || v === undefined ? 0 : Number(v);
}

// One fold's writes: `get` reads through them, `commit` hands them to
// kv.write in one call (in the order they were first made).
class Writes {
  constructor() {
    this.pending = new Map();
  }
  get(k) {
    return this.pending.has(k) ? this.pending.get(k) : kv.get(k);
  }
  set(k, v) {
    this.pending.set(k, v);
  }
  commit() {
    if (this.pending.size === 0) return;
    kv.write([...this.pending].map(([k, v]) => ({ tag: "set", val: [k, v] })));
  }
}

function add(w, k, n) {
  w.set(k, String(getNumber(w, k) + n));
}

function parseObject(text) {
  try {
    const v = JSON.parse(text);
    return v !== null && typeof v === "object" && !Array.isArray(v) ? v : null;
  } catch (_) {
    return null;
  }
}

// {name, options} of a Poll Create, or null when it is not a well-formed Poll.
function pollOf(json) {
  if (!json || json.type !== "Create") return null;
  const o = json.object;
  if (!o || typeof o !== "object" || o.type !== "Poll") return null;
  if (typeof o.name !== "string" || o.name.trim() === "") return null;
  if (!Array.isArray(o.options)) return null;
  const options = [];
  for (const opt of o.options) {
    if (!isSafe(opt) || options.includes(opt)) return null;
    options.push(opt);
  }
  if (options.length < 2 || options.length > 20) return null;
  return { name: o.name, options };
}

function recordPoll(w, id, poll) {
  if (!isSafe(id) || w.get(key("poll", id)) !== null) return;
  w.set(key("poll", id), JSON.stringify(poll));
  w.set(key("voters", id), "0");
  for (const opt of poll.options) w.set(key("count", id, opt), "0");
}

// The recorded Poll, recording it from the log if its Create was not folded yet.
function knownPoll(w, id) {
  let text = w.get(key("poll", id));
  if (text === null) {
    const logged = log.get(id);
    const poll = logged === null ? null : pollOf(parseObject(logged));
    if (poll === null) return null;
    recordPoll(w, id, poll);
    return poll;
  }
  return JSON.parse(text);
}

function foldVote(w, activity, json) {
  const pollId = json.object;
  const choice = json.choice;
  const actor = activity.actor;
  if (!isSafe(pollId) || typeof choice !== "string" || !isSafe(actor)) return;
  const poll = knownPoll(w, pollId);
  if (poll === null || !poll.options.includes(choice)) return;
  const voteKey = key("vote", pollId, actor);
  const previous = w.get(voteKey);
  if (previous === choice) return;
  if (previous === null) {
    add(w, key("voters", pollId), 1);
  } else {
    add(w, key("count", pollId, previous), -1);
  }
  w.set(voteKey, choice);
  add(w, key("count", pollId, choice), 1);
}

export function fold(activity) {
  if (activity.verb !== "Poll" && activity.verb !== "Vote") return;
  const text = log.get(activity.id);
  const json = text === null ? null : parseObject(text);
  if (json === null) throw `activity ${activity.id} is not in the log, or not a JSON object`;
  const w = new Writes();
  if (activity.verb === "Poll") {
    const poll = pollOf(json);
    if (poll !== null) recordPoll(w, activity.id, poll);
  } else if (activity.kind === "Vote") {
    foldVote(w, activity, json);
  }
  w.commit();
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
  if (path !== "poll") {
    throw { tag: "not-found", val: `no query \`${path}\`: use \`poll?id=<poll activity id>\`` };
  }
  const found = params.find(([k]) => k === "id");
  if (!found || found[1] === "") {
    throw { tag: "bad-request", val: "the `id` parameter is required: the id of the Poll's Create activity, e.g. ?id=bagaaihra…" };
  }
  const id = found[1];
  if (!isSafe(id)) {
    throw { tag: "bad-request", val: "`id` must be an activity id, without control characters" };
  }
  const text = kv.get(key("poll", id));
  if (text === null) {
    throw { tag: "not-found", val: `no Poll ${id} has been folded` };
  }
  const poll = JSON.parse(text);
  const counts = {};
  for (const opt of poll.options) counts[opt] = getNumber(kv, key("count", id, opt));
  return JSON.stringify({ id, name: poll.name, counts, voters: getNumber(kv, key("voters", id)) });
}
