/* A weft projection in C: counts the activities folded. Copy it and
 * change fold and query.
 *
 *   sdk/c/build.sh projection sdk/c/template/projection.c count.wasm
 *   weft module add projection count count.wasm --language c
 *   curl -s http://127.0.0.1:8080/projections/count/total
 *
 * Ownership: arguments of exports are yours to free; results must be
 * malloc'd (the bindings free them); import results become yours. No
 * stdio, time or files: they would import WASI, which the node refuses. */
#include <stdlib.h>
#include <string.h>

#include "projection.h"

static projection_string_t text(const char *s) {
  projection_string_t out;
  projection_string_dup(&out, s);
  return out;
}

static unsigned long long total(void) {
  projection_string_t key = text("total"), value;
  unsigned long long n = 0;
  if (weft_module_kv_get(&key, &value)) {
    for (size_t i = 0; i < value.len && value.ptr[i] >= '0' && value.ptr[i] <= '9'; i++)
      n = n * 10 + (unsigned)(value.ptr[i] - '0');
    projection_string_free(&value);
  }
  projection_string_free(&key);
  return n;
}

bool exports_projection_fold(projection_activity_t *activity, projection_string_t *err) {
  (void)err;
  char digits[24];
  unsigned long long n = total() + 1;
  int len = 0;
  do { digits[len++] = (char)('0' + n % 10); n /= 10; } while (n > 0);
  for (int i = 0; i < len / 2; i++) { char c = digits[i]; digits[i] = digits[len - 1 - i]; digits[len - 1 - i] = c; }
  digits[len] = 0;
  projection_string_t key = text("total"), value = text(digits);
  weft_module_kv_set(&key, &value);
  projection_string_free(&key);
  projection_string_free(&value);
  projection_activity_free(activity);
  return true;
}

bool exports_projection_query(projection_string_t *path,
                              projection_list_tuple2_string_string_t *params,
                              projection_string_t *ret, projection_query_error_t *err) {
  bool ok = path->len == 5 && memcmp(path->ptr, "total", 5) == 0;
  if (ok) {
    char body[48];
    unsigned long long n = total();
    char digits[24];
    int len = 0;
    do { digits[len++] = (char)('0' + n % 10); n /= 10; } while (n > 0);
    int at = 0;
    memcpy(body, "{\"total\":", 9); at = 9;
    while (len > 0) body[at++] = digits[--len];
    body[at++] = '}';
    body[at] = 0;
    *ret = text(body);
  } else {
    err->tag = WEFT_MODULE_TYPES_QUERY_ERROR_NOT_FOUND;
    err->val.not_found = text("no such query: use `total`");
  }
  projection_string_free(path);
  projection_list_tuple2_string_string_free(params);
  return ok;
}
