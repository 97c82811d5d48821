// weft verb `Poll` (also defined as `Vote`): one component, world `verb`
// of weft:module@0.2.0, built with componentize-qjs (see build.sh).
//
//   poll: {"type":"Create","object":{"type":"Poll","name":"Lunch?","options":["pizza","sushi"]}}
//   vote: {"type":"Vote","object":"<the poll's Create activity id>","choice":"pizza"}
//
// validate() returns normally for `ok`, and THROWS a `rejection` record
// ({message, field}: `field` is the path of the field at fault, such as
// `object.options`, or null) for `err`: componentize-qjs maps a top-level
// `result<_, E>` to return/throw. react() returns an empty list. No module
// state: the verb reads only its argument and `log.get` (the activity's own
// JSON is `log.get(activity.id)`, readable before it is stored).
import log from "weft:module/log@0.2.0";

const MIN_OPTIONS = 2;
const MAX_OPTIONS = 20;
const MAX_TEXT = 200;

// Thrown values become the WIT error (`rejection`); a plain Error would trap.
function reject(message, field = null) {
  throw { message, field };
}

// Text usable as part of a kv key and safe to show: no control characters
// (U+001F is the tally's key separator).
function isSafe(s) {
  return !/[\u0000-\u001f\u007f]/.test(s);
}

function parse(text, what, field = null) {
  let v;
  try {
    v = JSON.parse(text);
  } catch (_) {
    reject(`${what} is not valid JSON`, field);
  }
  if (v === null || typeof v !== "object" || Array.isArray(v)) {
    reject(`${what} is not a JSON object`, field);
  }
  return v;
}

// The options of a Poll object, checked; throws a rejection saying what to fix.
function checkPoll(object) {
  if (object === null || typeof object !== "object" || Array.isArray(object)) {
    reject("a Poll needs `object`, a JSON object with `type`, `name` and `options`", "object");
  }
  const name = object.name;
  if (typeof name !== "string" || name.trim() === "") {
    reject("a Poll needs `object.name`, a non-empty string (the question), e.g. \"Lunch?\"", "object.name");
  }
  if (name.length > MAX_TEXT) reject(`\`object.name\` is longer than ${MAX_TEXT} characters`, "object.name");
  const options = object.options;
  if (!Array.isArray(options)) {
    reject(`a Poll needs \`object.options\`, an array of ${MIN_OPTIONS} to ${MAX_OPTIONS} distinct non-empty strings`, "object.options");
  }
  const seen = new Set();
  const bad = (message) => reject(message, "object.options");
  options.forEach((o, i) => {
    if (typeof o !== "string" || o === "") {
      bad(`\`object.options[${i}]\` must be a non-empty string`);
    }
    if (!isSafe(o)) bad(`\`object.options[${i}]\` must not contain control characters`);
    if (o.length > MAX_TEXT) bad(`\`object.options[${i}]\` is longer than ${MAX_TEXT} characters`);
    if (seen.has(o)) bad(`\`object.options\` lists ${JSON.stringify(o)} twice; options must be distinct`);
    seen.add(o);
  });
  if (seen.size < MIN_OPTIONS) {
    bad(`a Poll needs at least ${MIN_OPTIONS} distinct options in \`object.options\`; it has ${seen.size}`);
  }
  if (seen.size > MAX_OPTIONS) {
    bad(`a Poll has at most ${MAX_OPTIONS} options in \`object.options\`; it has ${seen.size}`);
  }
}

function validatePoll(activity, json) {
  if (activity.kind !== "Create") {
    reject(`a Poll is only created (type \`Create\`); it cannot be \`${activity.kind}\`d — publish a new Poll instead`, "type");
  }
  checkPoll(json.object);
}

function validateVote(activity, json) {
  if (activity.kind !== "Vote") reject(`a Vote has type \`Vote\`, not \`${activity.kind}\``, "type");
  const pollId = json.object;
  if (typeof pollId !== "string" || pollId === "") {
    reject("a Vote needs `object`, a string: the id of the Poll's Create activity", "object");
  }
  if (!isSafe(pollId)) reject("`object` must be an activity id, without control characters", "object");
  const choice = json.choice;
  if (typeof choice !== "string") {
    reject("a Vote needs `choice`, a string: one of the Poll's options", "choice");
  }
  const text = log.get(pollId); // option<string> -> string | null
  if (text === null || text === undefined) {
    reject(`no Poll ${pollId} in this node's log; \`object\` must be the id of a Poll's Create activity`, "object");
  }
  const poll = parse(text, "the voted-on activity", "object");
  const object = poll.object;
  if (poll.type !== "Create" || object === null || typeof object !== "object" || object.type !== "Poll") {
    reject(`${pollId} is not a Poll (a Create of an object of type Poll)`, "object");
  }
  const options = Array.isArray(object.options) ? object.options : [];
  if (!options.includes(choice)) {
    reject(`${JSON.stringify(choice)} is not an option of this Poll; choose one of ${options.map((o) => JSON.stringify(o)).join(", ")}`, "choice");
  }
}

export function validate(activity) {
  const json = parse(log.get(activity.id), "the activity");
  switch (activity.verb) {
    case "Poll":
      return validatePoll(activity, json);
    case "Vote":
      return validateVote(activity, json);
    default:
      reject(`this module interprets the verbs Poll and Vote, not \`${activity.verb}\``);
  }
}

export function react(activity, context) {
  return [];
}
