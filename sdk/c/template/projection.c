/* A weft projection in C (weft:module@0.2.0): counts the activities folded.
 * Copy it and change fold_one and query.
 *
 *   sdk/c/build.sh projection sdk/c/template/projection.c count.wasm
 *   weft module add projection count count.wasm --language c
 *   curl -s http://127.0.0.1:8080/projections/count/total
 *
 * A fold collects its writes and hands them to kv.write in one call, only
 * when it succeeds; fold-batch folds each activity the same way, in order.
 * Ownership: arguments of exports are yours to free; results must be
 * malloc'd (the bindings free them); arguments of imports stay yours;
 * import results become yours. No stdio, time or files: they would import
 * WASI, which the node refuses. */
#include <stdlib.h>
#include <string.h>

#include "projection.h"

/* The decimal digits of n into out (at least 21 bytes), NUL-terminated. */
static void digits(unsigned long long n, char *out) {
  char tmp[21];
  int len = 0;
  do { tmp[len++] = (char)('0' + n % 10); n /= 10; } while (n > 0);
  for (int i = 0; i < len; i++) out[i] = tmp[len - 1 - i];
  out[len] = 0;
}

static unsigned long long total(void) {
  projection_string_t key, value;
  projection_string_set(&key, "total");
  unsigned long long n = 0;
  if (weft_module_kv_get(&key, &value)) {
    for (size_t i = 0; i < value.len && value.ptr[i] >= '0' && value.ptr[i] <= '9'; i++)
      n = n * 10 + (unsigned)(value.ptr[i] - '0');
    projection_string_free(&value);
  }
  return n;
}

/* Folds one activity: NULL when it succeeds (its writes are handed over in
 * one kv.write), or an error message (nothing is written). */
static const char *fold_one(const projection_activity_t *activity) {
  (void)activity;
  char n[21];
  digits(total() + 1, n);
  weft_module_kv_change_t changes[1];
  changes[0].tag = WEFT_MODULE_TYPES_CHANGE_SET;
  projection_string_set(&changes[0].val.set.f0, "total");
  projection_string_set(&changes[0].val.set.f1, n);
  weft_module_kv_list_change_t writes = {changes, 1};
  weft_module_kv_write(&writes);
  return NULL;
}

bool exports_projection_fold(projection_activity_t *activity, projection_string_t *err) {
  const char *message = fold_one(activity);
  if (message) projection_string_dup(err, message);
  projection_activity_free(activity);
  return message == NULL;
}

void exports_projection_fold_batch(projection_list_activity_t *activities,
                                   projection_list_result_void_string_t *ret) {
  ret->len = activities->len;
  ret->ptr = NULL; /* an empty list owns no memory */
  if (ret->len && !(ret->ptr = calloc(ret->len, sizeof *ret->ptr))) abort();
  for (size_t i = 0; i < activities->len; i++) {
    const char *message = fold_one(&activities->ptr[i]);
    ret->ptr[i].is_err = message != NULL;
    if (message) projection_string_dup(&ret->ptr[i].val.err, message);
  }
  projection_list_activity_free(activities);
}

bool exports_projection_query(projection_string_t *path,
                              projection_list_tuple2_string_string_t *params,
                              projection_string_t *ret, projection_query_error_t *err) {
  bool ok = path->len == 5 && memcmp(path->ptr, "total", 5) == 0;
  if (ok) {
    char body[40] = "{\"total\":";
    digits(total(), body + strlen(body));
    strcat(body, "}");
    projection_string_dup(ret, body);
  } else {
    err->tag = WEFT_MODULE_TYPES_QUERY_ERROR_NOT_FOUND;
    projection_string_dup(&err->val.not_found, "no such query: use `total`");
  }
  projection_string_free(path);
  projection_list_tuple2_string_string_free(params);
  return ok;
}
