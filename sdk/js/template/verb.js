// A weft verb in JavaScript: `Checkin`, an actor saying where it is.
//
//   sdk/js/build.sh verb sdk/js/template/verb.js checkin.wasm
//   weft module add verb Checkin checkin.wasm --language javascript
//
// validate returns normally to accept and throws {message} to refuse (the
// publisher gets a 422 with the message); react returns the activities a
// local recipient publishes in response, as [{actor, draft}].
export function validate(activity) {
  const json = JSON.parse(activity.json);
  const place = json.place;
  if (typeof place !== "string" || place.trim() === "" || place.length > 200) {
    throw { message: "a Checkin needs `place`: where you are, as text of at most 200 characters" };
  }
}

export function react(_activity, _context) {
  return [];
}
