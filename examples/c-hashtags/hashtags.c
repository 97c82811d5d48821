// hashtags: a weft projection written in C (world `projection` of
// weft:module@0.2.0). Build with examples/c-hashtags/build.sh.
//
// fold: for a Create of a Note (kind `Create`, verb `Note`), read
// `object.content` from the activity's JSON (`log.get` of its id), find
// `#tag` words (ASCII letters, digits, `_`; lower-cased) and, for each
// distinct tag, write
//
//   tag␟{tag}␟{rank}  -> activity id   (rank = u64::MAX - n, 20 digits)
//   tagcount␟{tag}    -> notes with that tag so far
//   count             -> n, tagged notes folded so far
//
// so an ascending scan of `tag␟{tag}␟` is newest first. `␟` is U+001F.
// Everything else is ignored (fold returns ok). A fold collects its writes
// and hands them to kv.write in one call, only when it succeeds; fold-batch
// folds each activity of a run the same way, in order.
//
// query: `tag?tag=<name>[&limit=N]` (limit default 20, at most 100) ->
//   {"tag": "...", "count": n, "items": ["activity id", ...]}
// unknown path -> not-found; missing/invalid tag or limit -> bad-request.
//
// No state is kept between calls (no globals); everything lives in kv.
//
// Ownership (wit-bindgen C canonical ABI rules):
//  * export arguments (the activities; path and params) are owned by us:
//    free them with the generated *_free helpers before returning;
//  * export results (the ok/err strings) must be heap memory (malloc): the
//    generated post-return function frees them after the host has copied
//    them, so never hand back a string literal;
//  * import arguments (keys, values, the writes) stay ours: the host
//    copies them;
//  * import results (log get, kv get / scan) become ours: free them.

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "projection.h"

// --- names from the generated bindings, in one place -----------------------

typedef projection_string_t str_t;
typedef projection_list_tuple2_string_string_t params_t;
typedef projection_list_tuple2_string_string_t scan_t;  // kv.scan's result: the same generated type
typedef weft_module_kv_change_t change_t;               // one write (set or delete)
typedef weft_module_kv_list_change_t changes_t;         // kv.write's argument

#define SEP "\x1f"
#define DEFAULT_LIMIT 20u
#define MAX_LIMIT 100u
#define MAX_TAG 100u     // longest tag kept, in bytes; longer ones are skipped
#define MAX_TAGS 64u     // most distinct tags taken from one note
#define MAX_DEPTH 64u    // deepest JSON nesting the extractor follows

// --- a growable byte buffer -------------------------------------------------

typedef struct {
  char *p;
  size_t len, cap;
} buf_t;

static void buf_reserve(buf_t *b, size_t extra) {
  if (extra > SIZE_MAX - b->len - 1) abort();
  size_t need = b->len + extra + 1;  // keep room for a NUL
  if (need <= b->cap) return;
  size_t cap = b->cap ? b->cap : 32;
  while (cap < need) cap = cap > SIZE_MAX / 2 ? need : cap * 2;
  char *p = realloc(b->p, cap);
  if (!p) abort();
  b->p = p;
  b->cap = cap;
}

static void buf_put(buf_t *b, const void *s, size_t n) {
  buf_reserve(b, n);
  if (n) memcpy(b->p + b->len, s, n);
  b->len += n;
  b->p[b->len] = 0;
}

static void buf_puts(buf_t *b, const char *s) { buf_put(b, s, strlen(s)); }
static void buf_putc(buf_t *b, char c) { buf_put(b, &c, 1); }
static void buf_free(buf_t *b) { free(b->p); b->p = NULL; b->len = b->cap = 0; }

static void buf_put_u64(buf_t *b, uint64_t v, int width) {
  char tmp[21];
  int i = 20;
  tmp[i] = 0;
  do { tmp[--i] = (char)('0' + v % 10); v /= 10; } while (v && i > 0);
  while (20 - i < width && i > 0) tmp[--i] = '0';
  buf_put(b, tmp + i, (size_t)(20 - i));
}

// A JSON string literal of `s` (quotes included).
static void buf_put_json_string(buf_t *b, const uint8_t *s, size_t n) {
  static const char hex[] = "0123456789abcdef";
  buf_putc(b, '"');
  for (size_t i = 0; i < n; i++) {
    uint8_t c = s[i];
    if (c == '"' || c == '\\') {
      char e[2] = {'\\', (char)c};
      buf_put(b, e, 2);
    } else if (c < 0x20) {
      char e[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
      buf_put(b, e, 6);
    } else {
      buf_putc(b, (char)c);
    }
  }
  buf_putc(b, '"');
}

// Hands `b` over as a wit string (the caller frees it, or post-return does).
// The generated free/post-return code frees only non-empty strings, so an
// empty one must not own memory.
static void buf_into_str(buf_t *b, str_t *out) {
  if (b->len == 0) {
    free(b->p);
    out->ptr = NULL;
    out->len = 0;
  } else {
    out->ptr = (uint8_t *)b->p;
    out->len = b->len;
  }
  b->p = NULL;
  b->len = b->cap = 0;
}

static bool str_eq(const str_t *s, const char *lit) {
  size_t n = strlen(lit);
  return s->len == n && memcmp(s->ptr, lit, n) == 0;
}

static str_t str_of(const buf_t *b) {
  str_t s = {(uint8_t *)b->p, b->len};
  return s;
}

// --- a small JSON reader -----------------------------------------------------
//
// Not a validator: it walks just enough of well-formed JSON to find one
// member, and on malformed input it gives up (returns false) without reading
// outside [p, end).

typedef struct {
  const uint8_t *p, *end;
} cur_t;

static void skip_ws(cur_t *c) {
  while (c->p < c->end &&
         (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
    c->p++;
}

static int hexval(uint8_t h) {
  if (h >= '0' && h <= '9') return h - '0';
  if (h >= 'a' && h <= 'f') return h - 'a' + 10;
  if (h >= 'A' && h <= 'F') return h - 'A' + 10;
  return -1;
}

// Four hex digits at c->p (advancing past them), or -1.
static long read_hex4(cur_t *c) {
  if (c->end - c->p < 4) return -1;
  long v = 0;
  for (int i = 0; i < 4; i++) {
    int h = hexval(c->p[i]);
    if (h < 0) return -1;
    v = v * 16 + h;
  }
  c->p += 4;
  return v;
}

static void put_utf8(buf_t *b, uint32_t cp) {
  char u[4];
  if (cp < 0x80) {
    u[0] = (char)cp;
    buf_put(b, u, 1);
  } else if (cp < 0x800) {
    u[0] = (char)(0xC0 | (cp >> 6));
    u[1] = (char)(0x80 | (cp & 0x3F));
    buf_put(b, u, 2);
  } else if (cp < 0x10000) {
    u[0] = (char)(0xE0 | (cp >> 12));
    u[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
    u[2] = (char)(0x80 | (cp & 0x3F));
    buf_put(b, u, 3);
  } else {
    u[0] = (char)(0xF0 | (cp >> 18));
    u[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    u[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    u[3] = (char)(0x80 | (cp & 0x3F));
    buf_put(b, u, 4);
  }
}

// Reads the string at c->p (which must be '"'), decoding escapes into `out`
// when `out` is not NULL. Lone surrogates become U+FFFD.
static bool read_string(cur_t *c, buf_t *out) {
  if (c->p >= c->end || *c->p != '"') return false;
  c->p++;
  while (c->p < c->end) {
    const uint8_t *run = c->p;
    while (c->p < c->end && *c->p != '"' && *c->p != '\\') c->p++;
    if (out && c->p > run) buf_put(out, run, (size_t)(c->p - run));
    if (c->p >= c->end) return false;
    if (*c->p == '"') {
      c->p++;
      return true;
    }
    // a backslash
    c->p++;
    if (c->p >= c->end) return false;
    uint8_t e = *c->p++;
    char ch;
    switch (e) {
      case '"': ch = '"'; break;
      case '\\': ch = '\\'; break;
      case '/': ch = '/'; break;
      case 'b': ch = '\b'; break;
      case 'f': ch = '\f'; break;
      case 'n': ch = '\n'; break;
      case 'r': ch = '\r'; break;
      case 't': ch = '\t'; break;
      case 'u': {
        long hi = read_hex4(c);
        if (hi < 0) return false;
        uint32_t cp = (uint32_t)hi;
        if (hi >= 0xD800 && hi <= 0xDBFF) {
          cur_t look = *c;
          long lo = -1;
          if (look.end - look.p >= 2 && look.p[0] == '\\' && look.p[1] == 'u') {
            look.p += 2;
            lo = read_hex4(&look);
          }
          if (lo >= 0xDC00 && lo <= 0xDFFF) {
            cp = 0x10000 + (((uint32_t)hi - 0xD800) << 10) + ((uint32_t)lo - 0xDC00);
            c->p = look.p;
          } else {
            cp = 0xFFFD;
          }
        } else if (hi >= 0xDC00 && hi <= 0xDFFF) {
          cp = 0xFFFD;
        }
        if (out) put_utf8(out, cp);
        continue;
      }
      default:
        return false;
    }
    if (out) buf_putc(out, ch);
  }
  return false;
}

// Skips one value of any kind (nesting is followed by counting brackets).
static bool skip_value(cur_t *c) {
  skip_ws(c);
  if (c->p >= c->end) return false;
  uint8_t first = *c->p;
  if (first == '"') return read_string(c, NULL);
  if (first != '{' && first != '[') {
    // number, true, false, null: up to the next delimiter
    const uint8_t *start = c->p;
    while (c->p < c->end && *c->p != ',' && *c->p != '}' && *c->p != ']' &&
           *c->p != ' ' && *c->p != '\t' && *c->p != '\n' && *c->p != '\r' &&
           *c->p != '"' && *c->p != '{' && *c->p != '[' && *c->p != ':')
      c->p++;
    return c->p > start;
  }
  size_t depth = 0;
  while (c->p < c->end) {
    uint8_t ch = *c->p;
    if (ch == '"') {
      if (!read_string(c, NULL)) return false;
      continue;
    }
    c->p++;
    if (ch == '{' || ch == '[') {
      depth++;
    } else if (ch == '}' || ch == ']') {
      if (depth == 0) return false;
      if (--depth == 0) return true;
    }
  }
  return false;
}

// Positions `c` at the value of member `name` of the object at c->p.
// Returns false when there is no such member or the input is malformed.
// With duplicate names the first one wins.
static bool find_member(cur_t *c, const char *name) {
  size_t name_len = strlen(name);
  skip_ws(c);
  if (c->p >= c->end || *c->p != '{') return false;
  c->p++;
  skip_ws(c);
  if (c->p < c->end && *c->p == '}') return false;
  buf_t key = {0};
  bool found = false;
  for (;;) {
    skip_ws(c);
    key.len = 0;
    if (!read_string(c, &key)) break;
    skip_ws(c);
    if (c->p >= c->end || *c->p != ':') break;
    c->p++;
    skip_ws(c);
    if (key.len == name_len && memcmp(key.p, name, name_len) == 0) {
      found = c->p < c->end;
      break;
    }
    if (!skip_value(c)) break;
    skip_ws(c);
    if (c->p >= c->end || *c->p != ',') break;  // '}' or garbage: not found
    c->p++;
  }
  buf_free(&key);
  return found;
}

// The decoded string at the path `names` (each an object member), into
// `out`. False when absent, not a string, or malformed.
static bool json_string_at(const uint8_t *json, size_t len, const char *const *names,
                           size_t count, buf_t *out) {
  if (count > MAX_DEPTH) return false;
  cur_t c = {json, json + len};
  for (size_t i = 0; i < count; i++)
    if (!find_member(&c, names[i])) return false;
  skip_ws(&c);
  return read_string(&c, out);
}

// --- tags -----------------------------------------------------------------

static bool is_word(uint8_t c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         (c >= '0' && c <= '9') || c == '_';
}

static uint8_t lower(uint8_t c) { return (c >= 'A' && c <= 'Z') ? (uint8_t)(c + 32) : c; }

typedef struct {
  char *tag[MAX_TAGS];
  size_t len[MAX_TAGS];
  size_t count;
} tags_t;

// The distinct `#tag` words of `text`, lower-cased, in order of appearance.
// A `#` counts when it starts the text or follows a byte that is neither a
// word character nor `&` (so `C#`, `a#b` and `&#39;` are not tags); the tag
// runs to the first byte that is not an ASCII letter, digit or `_`.
static void find_tags(const uint8_t *s, size_t n, tags_t *out) {
  out->count = 0;
  for (size_t i = 0; i < n && out->count < MAX_TAGS; i++) {
    if (s[i] != '#') continue;
    if (i > 0 && (is_word(s[i - 1]) || s[i - 1] == '&' || s[i - 1] == '#')) continue;
    size_t start = i + 1, j = start;
    while (j < n && is_word(s[j])) j++;
    size_t len = j - start;
    i = j - 1;  // the loop's i++ moves past the tag
    if (len == 0 || len > MAX_TAG) continue;
    char tmp[MAX_TAG];
    for (size_t k = 0; k < len; k++) tmp[k] = (char)lower(s[start + k]);
    bool seen = false;
    for (size_t t = 0; t < out->count && !seen; t++)
      seen = out->len[t] == len && memcmp(out->tag[t], tmp, len) == 0;
    if (seen) continue;
    char *copy = malloc(len + 1);
    if (!copy) abort();
    memcpy(copy, tmp, len);
    copy[len] = 0;
    out->tag[out->count] = copy;
    out->len[out->count] = len;
    out->count++;
  }
}

static void tags_free(tags_t *t) {
  for (size_t i = 0; i < t->count; i++) free(t->tag[i]);
  t->count = 0;
}

// A tag as a query names it: an optional leading `#`, then 1..MAX_TAG word
// characters; lower-cased into `out`.
static bool normalize_tag(const str_t *s, buf_t *out) {
  const uint8_t *p = s->ptr;
  size_t n = s->len;
  if (n && p[0] == '#') { p++; n--; }
  if (n == 0 || n > MAX_TAG) return false;
  for (size_t i = 0; i < n; i++) {
    if (!is_word(p[i])) return false;
    buf_putc(out, (char)lower(p[i]));
  }
  return true;
}

// --- numbers ---------------------------------------------------------------

// A whole decimal number without sign or leading junk; false on overflow.
static bool parse_u64(const uint8_t *s, size_t n, uint64_t *v) {
  if (n == 0 || n > 20) return false;
  uint64_t x = 0;
  for (size_t i = 0; i < n; i++) {
    if (s[i] < '0' || s[i] > '9') return false;
    uint64_t d = s[i] - '0';
    if (x > (UINT64_MAX - d) / 10) return false;
    x = x * 10 + d;
  }
  *v = x;
  return true;
}

// --- kv helpers ----------------------------------------------------------------

// The counter at `key` (0 when absent). False when the value is not a number.
static bool kv_counter(const buf_t *key, uint64_t *v) {
  str_t k = str_of(key), value;
  *v = 0;
  if (!weft_module_kv_get(&k, &value)) return true;
  bool ok = parse_u64(value.ptr, value.len, v);
  projection_string_free(&value);
  return ok;
}

// One fold's writes, each key and value a heap copy, handed over in one
// kv.write. Every key a fold writes is a different one, so its reads (of
// the store as it was before the fold) need not look here.
static void changes_set(changes_t *w, const buf_t *key, const uint8_t *value, size_t len) {
  if (w->len % 16 == 0) {
    if (w->len > SIZE_MAX / sizeof(change_t) - 16) abort();
    change_t *p = realloc(w->ptr, (w->len + 16) * sizeof(change_t));
    if (!p) abort();
    w->ptr = p;
  }
  change_t *c = &w->ptr[w->len++];
  c->tag = WEFT_MODULE_TYPES_CHANGE_SET;
  projection_string_dup_n(&c->val.set.f0, key->p, key->len);
  projection_string_dup_n(&c->val.set.f1, (const char *)value, len);
}

static void changes_set_u64(changes_t *w, const buf_t *key, uint64_t v) {
  buf_t val = {0};
  buf_put_u64(&val, v, 0);
  changes_set(w, key, (const uint8_t *)val.p, val.len);
  buf_free(&val);
}

// Is `s` usable as a key part and a value: not empty, no control characters
// (C0, DEL, C1), so no U+001F?
static bool is_safe(const str_t *s) {
  if (s->len == 0) return false;
  for (size_t i = 0; i < s->len; i++) {
    uint8_t c = s->ptr[i];
    if (c < 0x20 || c == 0x7F) return false;
    if (c == 0xC2 && i + 1 < s->len && s->ptr[i + 1] >= 0x80 && s->ptr[i + 1] <= 0x9F)
      return false;
  }
  return true;
}

// --- fold --------------------------------------------------------------------

// Collects the writes that fold `a` into `w`. Returns NULL on success, or
// an error message (a string literal).
static const char *fold_note(const projection_activity_t *a, changes_t *w) {
  if (!str_eq(&a->kind, "Create") || !str_eq(&a->verb, "Note")) return NULL;
  if (!is_safe(&a->id)) return NULL;

  str_t id = a->id, json;
  if (!weft_module_log_get(&id, &json)) return "hashtags: the activity is not in the log";
  static const char *const path[] = {"object", "content"};
  buf_t content = {0};
  bool found = json_string_at(json.ptr, json.len, path, 2, &content);
  projection_string_free(&json);  // import results are ours
  if (!found) {
    buf_free(&content);
    return NULL;  // no content (or not a string): nothing to index
  }
  tags_t tags;
  find_tags((const uint8_t *)content.p, content.len, &tags);
  buf_free(&content);
  if (tags.count == 0) return NULL;

  const char *err = NULL;
  buf_t key = {0};
  buf_puts(&key, "count");
  uint64_t n;
  if (!kv_counter(&key, &n)) {
    err = "hashtags: the `count` entry is not a number";
  } else if (n == UINT64_MAX) {
    err = "hashtags: the counter is exhausted";
  } else {
    buf_t rank = {0};
    buf_put_u64(&rank, UINT64_MAX - n, 20);
    for (size_t i = 0; i < tags.count && !err; i++) {
      key.len = 0;
      buf_puts(&key, "tag" SEP);
      buf_put(&key, tags.tag[i], tags.len[i]);
      buf_puts(&key, SEP);
      buf_put(&key, rank.p, rank.len);
      changes_set(w, &key, a->id.ptr, a->id.len);

      key.len = 0;
      buf_puts(&key, "tagcount" SEP);
      buf_put(&key, tags.tag[i], tags.len[i]);
      uint64_t c;
      if (!kv_counter(&key, &c) || c == UINT64_MAX)
        err = "hashtags: a `tagcount` entry is not a number";
      else
        changes_set_u64(w, &key, c + 1);
    }
    buf_free(&rank);
    if (!err) {
      key.len = 0;
      buf_puts(&key, "count");
      changes_set_u64(w, &key, n + 1);
    }
  }
  buf_free(&key);
  tags_free(&tags);
  return err;
}

// Folds one activity: its writes go to kv.write in one call when it
// succeeds, and nowhere when it fails. NULL, or an error message.
static const char *fold_one(const projection_activity_t *a) {
  changes_t w = {NULL, 0};
  const char *message = fold_note(a, &w);
  if (!message && w.len > 0) weft_module_kv_write(&w);
  weft_module_kv_list_change_free(&w);  // import arguments stay ours
  return message;
}

bool exports_projection_fold(projection_activity_t *activity, str_t *err) {
  const char *message = fold_one(activity);
  projection_activity_free(activity);  // the arguments are ours
  if (message) {
    projection_string_dup(err, message);  // heap copy: post-return frees it
    return false;
  }
  return true;
}

void exports_projection_fold_batch(projection_list_activity_t *activities,
                                   projection_list_result_void_string_t *ret) {
  ret->len = activities->len;
  ret->ptr = NULL;  // an empty list owns no memory
  if (ret->len && !(ret->ptr = calloc(ret->len, sizeof *ret->ptr))) abort();
  for (size_t i = 0; i < activities->len; i++) {
    const char *message = fold_one(&activities->ptr[i]);
    ret->ptr[i].is_err = message != NULL;
    if (message) projection_string_dup(&ret->ptr[i].val.err, message);
  }
  projection_list_activity_free(activities);  // the arguments are ours
}

// --- query ---------------------------------------------------------------------

static const str_t *param(const params_t *params, const char *name) {
  for (size_t i = 0; i < params->len; i++)
    if (str_eq(&params->ptr[i].f0, name)) return &params->ptr[i].f1;
  return NULL;
}

static void query_error(projection_query_error_t *err, uint8_t tag, buf_t *msg) {
  err->tag = tag;
  if (tag == WEFT_MODULE_TYPES_QUERY_ERROR_NOT_FOUND)
    buf_into_str(msg, &err->val.not_found);
  else
    buf_into_str(msg, &err->val.bad_request);
}

static bool query_tag(const params_t *params, str_t *ret,
                      projection_query_error_t *err) {
  buf_t msg = {0};
  buf_t tag = {0};
  const str_t *tag_param = param(params, "tag");
  if (!tag_param || !normalize_tag(tag_param, &tag)) {
    buf_puts(&msg, tag_param
        ? "`tag` must be 1 to 100 ASCII letters, digits or `_` (an optional leading `#` is dropped)"
        : "the `tag` parameter is required, e.g. ?tag=weft");
    buf_free(&tag);
    query_error(err, WEFT_MODULE_TYPES_QUERY_ERROR_BAD_REQUEST, &msg);
    return false;
  }
  uint64_t limit = DEFAULT_LIMIT;
  const str_t *limit_param = param(params, "limit");
  if (limit_param) {
    if (!parse_u64(limit_param->ptr, limit_param->len, &limit) || limit == 0) {
      buf_puts(&msg, "`limit` must be a whole number from 1 to 100");
      buf_free(&tag);
      query_error(err, WEFT_MODULE_TYPES_QUERY_ERROR_BAD_REQUEST, &msg);
      return false;
    }
    if (limit > MAX_LIMIT) limit = MAX_LIMIT;
  }

  buf_t key = {0};
  buf_puts(&key, "tagcount" SEP);
  buf_put(&key, tag.p, tag.len);
  uint64_t count;
  if (!kv_counter(&key, &count)) count = 0;

  key.len = 0;
  buf_puts(&key, "tag" SEP);
  buf_put(&key, tag.p, tag.len);
  buf_puts(&key, SEP);
  str_t prefix = str_of(&key);
  scan_t entries;
  weft_module_kv_scan(&prefix, NULL, (uint32_t)limit, &entries);

  buf_t out = {0};
  buf_puts(&out, "{\"tag\":");
  buf_put_json_string(&out, (const uint8_t *)tag.p, tag.len);
  buf_puts(&out, ",\"count\":");
  buf_put_u64(&out, count, 0);
  buf_puts(&out, ",\"items\":[");
  for (size_t i = 0; i < entries.len && i < limit; i++) {
    if (i) buf_putc(&out, ',');
    buf_put_json_string(&out, entries.ptr[i].f1.ptr, entries.ptr[i].f1.len);
  }
  buf_puts(&out, "]}");

  projection_list_tuple2_string_string_free(&entries);  // import results are ours
  buf_free(&key);
  buf_free(&tag);
  buf_free(&msg);
  buf_into_str(&out, ret);  // heap: post-return frees it
  return true;
}

bool exports_projection_query(str_t *path, params_t *params, str_t *ret,
                              projection_query_error_t *err) {
  bool ok;
  if (str_eq(path, "tag")) {
    ok = query_tag(params, ret, err);
  } else {
    buf_t msg = {0};
    buf_puts(&msg, "no query `");
    size_t cut = path->len > 80 ? 80 : path->len;
    // never cut inside a UTF-8 sequence: the host checks returned strings
    while (cut < path->len && cut > 0 && (path->ptr[cut] & 0xC0) == 0x80) cut--;
    buf_put(&msg, path->ptr, cut);
    buf_puts(&msg, "`: use `tag?tag=<name>&limit=<1..100>`");
    query_error(err, WEFT_MODULE_TYPES_QUERY_ERROR_NOT_FOUND, &msg);
    ok = false;
  }
  projection_string_free(path);  // the arguments are ours
  projection_list_tuple2_string_string_free(params);
  return ok;
}
