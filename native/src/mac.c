/*
 * tulipwire_mac: batch HMAC-SHA256 for tulipwire's wire layer (src/wire/mac-native.ts).
 *
 * N-API (ABI-stable), C, over the OpenSSL that Node bundles: the headers ship with Node
 * ($(npm config get nodedir)/include/node/openssl) and the symbols are exported by the node binary, so nothing is
 * linked here. A key's HMAC inner and outer states (SHA-256 after the K^ipad and K^opad blocks, RFC 2104) are
 * computed once; each MAC then costs the message blocks, the padding and one outer block, with no allocation and
 * one JS->C crossing per batch instead of one per message.
 *
 * Every range is bounds-checked against its buffer before any byte is read or written; a bad argument throws a
 * RangeError/TypeError into JavaScript and nothing is touched.
 */
#define NAPI_VERSION 8
#include <node_api.h>
#include <openssl/sha.h>
#include <openssl/crypto.h>
#include <stdint.h>
#include <string.h>

#define TAG_SIZE 32
#define STATE_SIZE (2 * sizeof(SHA256_CTX))

#define CHECK(call)                                                              \
  do {                                                                           \
    if ((call) != napi_ok) {                                                     \
      napi_throw_error(env, NULL, "tulipwire_mac: N-API call failed: " #call);   \
      return NULL;                                                               \
    }                                                                            \
  } while (0)

/* Reads a Uint8Array/Buffer argument; returns 0 and throws on a wrong type. */
static int get_bytes(napi_env env, napi_value v, uint8_t **data, size_t *len) {
  bool is_ta = false;
  if (napi_is_typedarray(env, v, &is_ta) != napi_ok || !is_ta) {
    napi_throw_type_error(env, NULL, "tulipwire_mac: expected a Uint8Array");
    return 0;
  }
  napi_typedarray_type type;
  void *p = NULL;
  size_t n = 0;
  if (napi_get_typedarray_info(env, v, &type, &n, &p, NULL, NULL) != napi_ok) return 0;
  if (type != napi_uint8_array) {
    napi_throw_type_error(env, NULL, "tulipwire_mac: expected a Uint8Array");
    return 0;
  }
  *data = (uint8_t *)p;
  *len = n;
  return 1;
}

/* Reads a Uint32Array argument (element count in *len). */
static int get_u32(napi_env env, napi_value v, uint32_t **data, size_t *len) {
  bool is_ta = false;
  if (napi_is_typedarray(env, v, &is_ta) != napi_ok || !is_ta) {
    napi_throw_type_error(env, NULL, "tulipwire_mac: expected a Uint32Array");
    return 0;
  }
  napi_typedarray_type type;
  void *p = NULL;
  size_t n = 0;
  if (napi_get_typedarray_info(env, v, &type, &n, &p, NULL, NULL) != napi_ok) return 0;
  if (type != napi_uint32_array) {
    napi_throw_type_error(env, NULL, "tulipwire_mac: expected a Uint32Array");
    return 0;
  }
  *data = (uint32_t *)p;
  *len = n;
  return 1;
}

static int get_index(napi_env env, napi_value v, uint32_t *out) {
  if (napi_get_value_uint32(env, v, out) != napi_ok) {
    napi_throw_type_error(env, NULL, "tulipwire_mac: expected an unsigned integer");
    return 0;
  }
  return 1;
}

static void hmac_one(const SHA256_CTX *st, const uint8_t *msg, size_t n, uint8_t *tag) {
  SHA256_CTX c;
  uint8_t inner[TAG_SIZE];
  memcpy(&c, &st[0], sizeof c);
  SHA256_Update(&c, msg, n);
  SHA256_Final(inner, &c);
  memcpy(&c, &st[1], sizeof c);
  SHA256_Update(&c, inner, TAG_SIZE);
  SHA256_Final(tag, &c);
}

/* prepareKey(key: Uint8Array): Buffer — the two precomputed SHA256_CTX states. */
static napi_value prepare_key(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1) {
    napi_throw_type_error(env, NULL, "tulipwire_mac: prepareKey(key)");
    return NULL;
  }
  uint8_t *key;
  size_t klen;
  if (!get_bytes(env, argv[0], &key, &klen)) return NULL;
  uint8_t block[64];
  memset(block, 0, sizeof block);
  if (klen > 64) {
    SHA256(key, klen, block);
  } else {
    memcpy(block, key, klen);
  }
  void *out_data = NULL;
  napi_value out;
  CHECK(napi_create_buffer(env, STATE_SIZE, &out_data, &out));
  SHA256_CTX *st = (SHA256_CTX *)out_data;
  uint8_t pad[64];
  for (int i = 0; i < 64; i++) pad[i] = block[i] ^ 0x36;
  SHA256_Init(&st[0]);
  SHA256_Update(&st[0], pad, 64);
  for (int i = 0; i < 64; i++) pad[i] = block[i] ^ 0x5c;
  SHA256_Init(&st[1]);
  SHA256_Update(&st[1], pad, 64);
  OPENSSL_cleanse(block, sizeof block);
  OPENSSL_cleanse(pad, sizeof pad);
  return out;
}

/* Common argument parsing of sign/verify: (state, buf, starts, ends, first, count, ...). */
typedef struct {
  const SHA256_CTX *st;
  uint8_t *buf;
  size_t len;
  uint32_t *starts;
  uint32_t *ends;
  uint32_t first;
  uint32_t count;
} batch_args;

static int parse_batch(napi_env env, napi_value *argv, batch_args *a) {
  uint8_t *st;
  size_t stlen;
  size_t ns, ne;
  if (!get_bytes(env, argv[0], &st, &stlen)) return 0;
  if (stlen != STATE_SIZE) {
    napi_throw_range_error(env, NULL, "tulipwire_mac: not a prepared key state");
    return 0;
  }
  a->st = (const SHA256_CTX *)st;
  if (!get_bytes(env, argv[1], &a->buf, &a->len)) return 0;
  if (!get_u32(env, argv[2], &a->starts, &ns)) return 0;
  if (!get_u32(env, argv[3], &a->ends, &ne)) return 0;
  if (!get_index(env, argv[4], &a->first)) return 0;
  if (!get_index(env, argv[5], &a->count)) return 0;
  uint64_t last = (uint64_t)a->first + a->count;
  if (last > ns || last > ne) {
    napi_throw_range_error(env, NULL, "tulipwire_mac: first + count exceeds the offset arrays");
    return 0;
  }
  for (uint32_t i = a->first; i < last; i++) {
    if (a->starts[i] > a->ends[i] || (uint64_t)a->ends[i] + TAG_SIZE > a->len) {
      napi_throw_range_error(env, NULL, "tulipwire_mac: range outside the buffer");
      return 0;
    }
  }
  return 1;
}

/* signBatch(state, buf, starts, ends, first, count): writes each tag at buf[ends[i]]. */
static napi_value sign_batch(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 6) {
    napi_throw_type_error(env, NULL, "tulipwire_mac: signBatch(state, buf, starts, ends, first, count)");
    return NULL;
  }
  batch_args a;
  if (!parse_batch(env, argv, &a)) return NULL;
  for (uint32_t i = a.first, n = a.first + a.count; i < n; i++) {
    hmac_one(a.st, a.buf + a.starts[i], a.ends[i] - a.starts[i], a.buf + a.ends[i]);
  }
  return NULL;
}

/* verifyBatch(state, buf, starts, ends, first, count, results): results[i] = tag matches; returns the count. */
static napi_value verify_batch(napi_env env, napi_callback_info info) {
  size_t argc = 7;
  napi_value argv[7];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 7) {
    napi_throw_type_error(env, NULL, "tulipwire_mac: verifyBatch(state, buf, starts, ends, first, count, results)");
    return NULL;
  }
  batch_args a;
  if (!parse_batch(env, argv, &a)) return NULL;
  uint8_t *res;
  size_t rlen;
  if (!get_bytes(env, argv[6], &res, &rlen)) return NULL;
  if ((uint64_t)a.first + a.count > rlen) {
    napi_throw_range_error(env, NULL, "tulipwire_mac: results array too short");
    return NULL;
  }
  uint32_t ok = 0;
  uint8_t tag[TAG_SIZE];
  for (uint32_t i = a.first, n = a.first + a.count; i < n; i++) {
    hmac_one(a.st, a.buf + a.starts[i], a.ends[i] - a.starts[i], tag);
    /* CRYPTO_memcmp: constant time in the tag contents. */
    int good = CRYPTO_memcmp(tag, a.buf + a.ends[i], TAG_SIZE) == 0;
    res[i] = (uint8_t)good;
    ok += (uint32_t)good;
  }
  napi_value r;
  CHECK(napi_create_uint32(env, ok, &r));
  return r;
}

/* mac(state, data, start, end, out): writes the tag of data[start..end) into out[0..32). */
static napi_value mac_one(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 5) {
    napi_throw_type_error(env, NULL, "tulipwire_mac: mac(state, data, start, end, out)");
    return NULL;
  }
  uint8_t *st, *data, *out;
  size_t stlen, len, olen;
  uint32_t start, end;
  if (!get_bytes(env, argv[0], &st, &stlen)) return NULL;
  if (stlen != STATE_SIZE) {
    napi_throw_range_error(env, NULL, "tulipwire_mac: not a prepared key state");
    return NULL;
  }
  if (!get_bytes(env, argv[1], &data, &len)) return NULL;
  if (!get_index(env, argv[2], &start) || !get_index(env, argv[3], &end)) return NULL;
  if (!get_bytes(env, argv[4], &out, &olen)) return NULL;
  if (start > end || end > len || olen < TAG_SIZE) {
    napi_throw_range_error(env, NULL, "tulipwire_mac: range outside the buffer");
    return NULL;
  }
  hmac_one((const SHA256_CTX *)st, data + start, end - start, out);
  return NULL;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    {"prepareKey", NULL, prepare_key, NULL, NULL, NULL, napi_enumerable, NULL},
    {"signBatch", NULL, sign_batch, NULL, NULL, NULL, napi_enumerable, NULL},
    {"verifyBatch", NULL, verify_batch, NULL, NULL, NULL, napi_enumerable, NULL},
    {"mac", NULL, mac_one, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  CHECK(napi_define_properties(env, exports, sizeof props / sizeof props[0], props));
  napi_value v;
  CHECK(napi_create_uint32(env, (uint32_t)STATE_SIZE, &v));
  CHECK(napi_set_named_property(env, exports, "stateSize", v));
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
