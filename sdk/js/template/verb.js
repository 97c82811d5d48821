// A weft verb in JavaScript (weft:module@0.2.0): `Checkin`, an actor saying
// where it is, e.g. {"type": "Checkin", "place": "Lisbon", "to": [...]}.
//
//   sdk/js/build.sh verb sdk/js/template/verb.js checkin.wasm
//   weft module add verb Checkin checkin.wasm --language javascript
//
// validate returns normally to accept and throws {message, field} to refuse
// (the publisher gets a 422 with the message and the field at fault, a path
// into the activity such as `object.content`, or null); react returns the
// activities a local recipient publishes in response, as [{actor, draft}].
// The activity's parsed fields are on `activity`; its whole JSON is
// log.get(activity.id), which validate can read before it is stored.
import log from "weft:module/log@0.2.0";

export function validate(activity) {
  const place = JSON.parse(log.get(activity.id) ?? "{}").place;
  if (typeof place !== "string" || place.trim() === "" || place.length > 200) {
    throw { message: "a Checkin needs `place`: where you are, as text of at most 200 characters", field: "place" };
  }
}

export function react(_activity, _context) {
  return [];
}
