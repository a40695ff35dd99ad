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
 * RangeError/TypeError into JavaScript and nothing is touched. The checks hold for the whole call because nothing
 * that is checked can change during it: memory the call writes may not alias the offsets or the key state, and the
 * offsets and the key state may not live in a SharedArrayBuffer (another thread could rewrite them).
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

/*
 * Refuses a typed array `v` whose memory is a SharedArrayBuffer: another thread could change it between the checks
 * and the reads that trust them (an offset moved past its buffer after it was checked: out-of-bounds reads and
 * writes; a key state's `num`: a write outside the context). Used for the offsets and the key state.
 */
static int not_shared(napi_env env, napi_value v, const char *what) {
  napi_value ab;
  bool is_ab = false;
  if (napi_get_typedarray_info(env, v, NULL, NULL, NULL, &ab, NULL) != napi_ok ||
      napi_is_arraybuffer(env, ab, &is_ab) != napi_ok || !is_ab) {
    napi_throw_type_error(env, NULL, what);
    return 0;
  }
  return 1;
}

/* Reads a Uint32Array argument (element count in *len), refusing one in shared memory. */
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
  if (!not_shared(env, v, "tulipwire_mac: offsets in a SharedArrayBuffer")) return 0;
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


/* ---- SHA-256 with the x86 SHA extensions, two messages at a time ------------------------------------------------
 *
 * OpenSSL's own SHA-NI code hashes one message at a time, and one SHA-256 block is a chain of 32 dependent
 * sha256rnds2 instructions. Two independent messages interleaved overlap their chains (~1.35x the block throughput
 * measured here), and the HMAC is finished in registers: the padded last block and the outer block are built as
 * words, never stored as bytes and reloaded (which stalls store forwarding), with none of SHA256_Update/Final's
 * copying and cleansing. Together ~1.5x OpenSSL's path per ~100 B message (bench/wire.ts shows both). Used only
 * when CPUID reports SHA, SSSE3 and SSE4.1; otherwise (and for `useAccel(false)`, which the tests use to check both
 * paths) the OpenSSL path above serves. Both give the same bytes (test/wire/mac.test.ts).
 */
#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
#define TW_HAVE_SHANI_CODE 1
#include <cpuid.h>
#include <immintrin.h>

static const uint32_t K256[64] = {
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

static int cpu_has_shani(void) {
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
  if (!(c & bit_SSSE3) || !(c & bit_SSE4_1)) return 0;
  if (__get_cpuid_max(0, NULL) < 7) return 0;
  __cpuid_count(7, 0, a, b, c, d);
  return (b & (1u << 29)) != 0;
}

/* State h[0..7] (A..H) <-> the ABEF/CDGH register pair sha256rnds2 works on. */
#define TW_TARGET __attribute__((target("sha,ssse3,sse4.1")))

TW_TARGET static inline void st_load(const uint32_t *h, __m128i *abef, __m128i *cdgh) {
  __m128i t = _mm_loadu_si128((const __m128i *)&h[0]);
  __m128i s = _mm_loadu_si128((const __m128i *)&h[4]);
  t = _mm_shuffle_epi32(t, 0xB1);
  s = _mm_shuffle_epi32(s, 0x1B);
  *abef = _mm_alignr_epi8(t, s, 8);
  *cdgh = _mm_blend_epi16(s, t, 0xF0);
}

TW_TARGET static inline void st_store(uint32_t *h, __m128i abef, __m128i cdgh) {
  __m128i t = _mm_shuffle_epi32(abef, 0x1B);
  cdgh = _mm_shuffle_epi32(cdgh, 0xB1);
  _mm_storeu_si128((__m128i *)&h[0], _mm_blend_epi16(t, cdgh, 0xF0));
  _mm_storeu_si128((__m128i *)&h[4], _mm_alignr_epi8(cdgh, t, 8));
}

/* The outer block's words from an inner state, in registers: W0..7 = the inner digest (A..H), W8 = 0x80000000,
 * W15 = (64 + 32) * 8 bits. No bytes go through memory, so no store-to-load stall precedes the outer block. */
TW_TARGET static inline void outer_words(__m128i abef, __m128i cdgh, __m128i *w) {
  __m128i t = _mm_shuffle_epi32(abef, 0x1B);
  cdgh = _mm_shuffle_epi32(cdgh, 0xB1);
  w[0] = _mm_blend_epi16(t, cdgh, 0xF0);   /* A B C D */
  w[1] = _mm_alignr_epi8(cdgh, t, 8);      /* E F G H */
  w[2] = _mm_set_epi32(0, 0, 0, (int)0x80000000u);
  w[3] = _mm_set_epi32(0x300, 0, 0, 0);
}

/* compress1/compress2 on words already in registers. */
TW_TARGET static inline void compress1w(__m128i *s0, __m128i *s1, __m128i *w) {
  __m128i a0 = *s0, a1 = *s1;
#pragma GCC unroll 16
  for (int g = 0; g < 16; g++) {
    __m128i m = _mm_add_epi32(w[g & 3], _mm_loadu_si128((const __m128i *)&K256[4 * g]));
    a1 = _mm_sha256rnds2_epu32(a1, a0, m);
    a0 = _mm_sha256rnds2_epu32(a0, a1, _mm_shuffle_epi32(m, 0x0E));
    if (g < 12) {
      __m128i x = _mm_add_epi32(_mm_sha256msg1_epu32(w[g & 3], w[(g + 1) & 3]), _mm_alignr_epi8(w[(g + 3) & 3], w[(g + 2) & 3], 4));
      w[g & 3] = _mm_sha256msg2_epu32(x, w[(g + 3) & 3]);
    }
  }
  *s0 = _mm_add_epi32(a0, *s0);
  *s1 = _mm_add_epi32(a1, *s1);
}

TW_TARGET static inline void compress2w(__m128i *s0, __m128i *s1, __m128i *w, __m128i *t0, __m128i *t1, __m128i *v) {
  __m128i a0 = *s0, a1 = *s1, b0 = *t0, b1 = *t1;
#pragma GCC unroll 16
  for (int g = 0; g < 16; g++) {
    const __m128i k = _mm_loadu_si128((const __m128i *)&K256[4 * g]);
    __m128i m = _mm_add_epi32(w[g & 3], k);
    __m128i n = _mm_add_epi32(v[g & 3], k);
    a1 = _mm_sha256rnds2_epu32(a1, a0, m);
    b1 = _mm_sha256rnds2_epu32(b1, b0, n);
    a0 = _mm_sha256rnds2_epu32(a0, a1, _mm_shuffle_epi32(m, 0x0E));
    b0 = _mm_sha256rnds2_epu32(b0, b1, _mm_shuffle_epi32(n, 0x0E));
    if (g < 12) {
      __m128i x = _mm_add_epi32(_mm_sha256msg1_epu32(w[g & 3], w[(g + 1) & 3]), _mm_alignr_epi8(w[(g + 3) & 3], w[(g + 2) & 3], 4));
      __m128i y = _mm_add_epi32(_mm_sha256msg1_epu32(v[g & 3], v[(g + 1) & 3]), _mm_alignr_epi8(v[(g + 3) & 3], v[(g + 2) & 3], 4));
      w[g & 3] = _mm_sha256msg2_epu32(x, w[(g + 3) & 3]);
      v[g & 3] = _mm_sha256msg2_epu32(y, v[(g + 3) & 3]);
    }
  }
  *s0 = _mm_add_epi32(a0, *s0);
  *s1 = _mm_add_epi32(a1, *s1);
  *t0 = _mm_add_epi32(b0, *t0);
  *t1 = _mm_add_epi32(b1, *t1);
}

/* The tag (big-endian A..H) from a final state. */
TW_TARGET static inline void put_tag(uint8_t *tag, __m128i abef, __m128i cdgh) {
  const __m128i mask = _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL);
  __m128i w[4];
  outer_words(abef, cdgh, w);
  _mm_storeu_si128((__m128i *)tag, _mm_shuffle_epi8(w[0], mask));
  _mm_storeu_si128((__m128i *)(tag + 16), _mm_shuffle_epi8(w[1], mask));
}

static inline void put_be32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16); p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v;
}

/* Block k of a message as byte-swapped words: its whole blocks straight from the message, then the tail words. */
TW_TARGET static inline void block_words(const uint8_t *msg, size_t full, const __m128i *tail, size_t k, __m128i *w) {
  if (k < full) {
    const __m128i mask = _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL);
    const uint8_t *p = msg + 64 * k;
    w[0] = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)p), mask);
    w[1] = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(p + 16)), mask);
    w[2] = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(p + 32)), mask);
    w[3] = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(p + 48)), mask);
  } else {
    const __m128i *t = tail + 4 * (k - full);
    w[0] = t[0];
    w[1] = t[1];
    w[2] = t[2];
    w[3] = t[3];
  }
}

/*
 * The last, padded block(s) of an inner hash as byte-swapped words, built in registers (no bytes through memory, so
 * no store-forwarding stall): bytes [0, r) from src (the message's partial last block), 0x80 at r, zeros, and the
 * 64-bit big-endian bit length at the end of the last block. Returns the number of blocks (1 or 2). Reads
 * src[0 .. 16 * ceil(r / 16)), at most r + 15 bytes: the caller guarantees that many are readable.
 */
TW_TARGET static inline size_t tail_words(const uint8_t *src, size_t r, uint64_t bits, __m128i *w) {
  const __m128i mask = _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL);
  const __m128i lane = _mm_setr_epi8(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  const __m128i rv = _mm_set1_epi8((char)r);
  const __m128i hi = _mm_set1_epi8((char)0x80);
  size_t tb = r + 9 <= 64 ? 1 : 2;
  for (size_t i = 0; i < 4 * tb; i++) {
    __m128i idx = _mm_add_epi8(lane, _mm_set1_epi8((char)(16 * i))); /* 0..127: signed compares are exact */
    __m128i data = 16 * i < r ? _mm_loadu_si128((const __m128i *)(src + 16 * i)) : _mm_setzero_si128();
    __m128i keep = _mm_cmpgt_epi8(rv, idx);
    __m128i pad = _mm_and_si128(_mm_cmpeq_epi8(idx, rv), hi);
    w[i] = _mm_or_si128(_mm_and_si128(data, keep), pad);
  }
  w[4 * tb - 1] = _mm_or_si128(w[4 * tb - 1], _mm_set_epi64x((long long)__builtin_bswap64(bits), 0));
  for (size_t i = 0; i < 4 * tb; i++) w[i] = _mm_shuffle_epi8(w[i], mask);
  return tb;
}

/*
 * A message's inner-hash tail: its padded last block(s) as words in w; returns its total block count. `slack`: bytes
 * readable past the message's end (below 16, the tail is copied to a local buffer first).
 */
TW_TARGET static inline size_t inner_tail(const uint8_t *msg, size_t n, size_t slack, __m128i *w) {
  uint8_t bounce[80];
  size_t full = n >> 6, r = n & 63;
  const uint8_t *src = msg + 64 * full;
  if (slack < 16) {
    memcpy(bounce, src, r);
    src = bounce;
  }
  return full + tail_words(src, r, ((uint64_t)n + 64) * 8, w);
}

/*
 * HMAC-SHA256 of one or two messages (mb == NULL: one) from the prepared key states st[0] (ipad), st[1] (opad).
 * `slack`: bytes readable past each message's end (32 in a batch: the tag slot; 0 for a lone message, whose tail
 * is then copied to a local buffer first).
 */
TW_TARGET static void hmac_shani(const SHA256_CTX *st, const uint8_t *ma, size_t na, uint8_t *ta, const uint8_t *mb, size_t nb, uint8_t *tb, size_t slack) {
  __m128i a0, a1, b0, b1, wa[4], wb[4];
  __m128i taw[8], tbw[8];
  size_t fa = na >> 6;
  size_t blocks_a = inner_tail(ma, na, slack, taw);
  st_load(st[0].h, &a0, &a1);
  size_t k = 0;
  if (mb != NULL) {
    size_t fb = nb >> 6;
    size_t blocks_b = inner_tail(mb, nb, slack, tbw);
    b0 = a0;
    b1 = a1;
    size_t common = blocks_a < blocks_b ? blocks_a : blocks_b;
    for (; k < common; k++) {
      block_words(ma, fa, taw, k, wa);
      block_words(mb, fb, tbw, k, wb);
      compress2w(&a0, &a1, wa, &b0, &b1, wb);
    }
    for (size_t j = k; j < blocks_b; j++) {
      block_words(mb, fb, tbw, j, wb);
      compress1w(&b0, &b1, wb);
    }
  }
  for (; k < blocks_a; k++) {
    block_words(ma, fa, taw, k, wa);
    compress1w(&a0, &a1, wa);
  }
  /* outer block: the 32-byte inner digest, 0x80, zeros, length (64 + 32) * 8 bits */
  __m128i o0, o1;
  st_load(st[1].h, &o0, &o1);
  outer_words(a0, a1, wa);
  a0 = o0;
  a1 = o1;
  if (mb != NULL) {
    outer_words(b0, b1, wb);
    b0 = o0;
    b1 = o1;
    compress2w(&a0, &a1, wa, &b0, &b1, wb);
    /* a's tag first, then b's: where the two tag slots overlap, b's bytes win, as when signing one by one */
    put_tag(ta, a0, a1);
    put_tag(tb, b0, b1);
  } else {
    compress1w(&a0, &a1, wa);
    put_tag(ta, a0, a1);
  }
}
#endif

static int shani_available = 0; /* CPUID says so */
static int shani_enabled = 0;   /* and it is in use */

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

/* Whether the byte ranges [a, a + an) and [b, b + bn) share memory (two views of one ArrayBuffer can). */
static inline int overlaps(const void *a, size_t an, const void *b, size_t bn) {
  uintptr_t x = (uintptr_t)a, y = (uintptr_t)b;
  return an != 0 && bn != 0 && x < y + bn && y < x + an;
}

/*
 * A key state is the two SHA256_CTX after one full 64-byte pad block each, as prepare_key leaves them: no bytes
 * pending (num == 0) and a 32-byte digest. Anything else is refused: SHA256_Update copies to data + num, so a crafted
 * num would write outside the context.
 */
static int check_state(napi_env env, const uint8_t *st, size_t stlen) {
  const SHA256_CTX *c = (const SHA256_CTX *)st;
  if (stlen != STATE_SIZE || c[0].num != 0 || c[1].num != 0 || c[0].md_len != SHA256_DIGEST_LENGTH ||
      c[1].md_len != SHA256_DIGEST_LENGTH) {
    napi_throw_range_error(env, NULL, "tulipwire_mac: not a prepared key state");
    return 0;
  }
  return 1;
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
  if (!not_shared(env, argv[0], "tulipwire_mac: a key state in a SharedArrayBuffer")) return 0;
  if (!check_state(env, st, stlen)) return 0;
  a->st = (const SHA256_CTX *)st;
  if (!get_bytes(env, argv[1], &a->buf, &a->len)) return 0;
  if (!get_u32(env, argv[2], &a->starts, &ns)) return 0;
  if (!get_u32(env, argv[3], &a->ends, &ne)) return 0;
  /* The ranges are checked once, below, and then trusted: a tag written into buf must not be able to change an
   * offset or the key state afterwards (views of one ArrayBuffer could share memory). */
  if (overlaps(a->buf, a->len, a->starts, ns * 4) || overlaps(a->buf, a->len, a->ends, ne * 4) ||
      overlaps(a->buf, a->len, st, stlen)) {
    napi_throw_range_error(env, NULL, "tulipwire_mac: the buffer shares memory with the offsets or the key state");
    return 0;
  }
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
  uint32_t i = a.first, n = a.first + a.count;
#ifdef TW_HAVE_SHANI_CODE
  if (shani_enabled) {
    while (i < n) {
      /* A pair is hashed together, before either tag is written: only when the second message does not cover the
       * first one's tag slot (frames never overlap; this keeps any layout byte-identical with one-by-one signing). */
      if (i + 1 < n && (a.ends[i + 1] <= a.ends[i] || a.starts[i + 1] >= a.ends[i] + TAG_SIZE)) {
        hmac_shani(a.st, a.buf + a.starts[i], a.ends[i] - a.starts[i], a.buf + a.ends[i],
                   a.buf + a.starts[i + 1], a.ends[i + 1] - a.starts[i + 1], a.buf + a.ends[i + 1], TAG_SIZE);
        i += 2;
      } else {
        hmac_shani(a.st, a.buf + a.starts[i], a.ends[i] - a.starts[i], a.buf + a.ends[i], NULL, 0, NULL, TAG_SIZE);
        i += 1;
      }
    }
    return NULL;
  }
#endif
  for (; i < n; i++) {
    hmac_one(a.st, a.buf + a.starts[i], a.ends[i] - a.starts[i], a.buf + a.ends[i]);
  }
  return NULL;
}

/* Compares the computed `tag` of message i with the one in the buffer (CRYPTO_memcmp: constant time in the tag
 * contents), records the outcome in res[i] and returns it (1 = match). */
static inline uint32_t check_tag(const batch_args *a, uint8_t *res, uint32_t i, const uint8_t *tag) {
  uint32_t good = CRYPTO_memcmp(tag, a->buf + a->ends[i], TAG_SIZE) == 0;
  res[i] = (uint8_t)good;
  return good;
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
  /* results are written while the batch runs: they must not alias an offset, the key state or the frames. */
  if (overlaps(res, rlen, a.starts, (size_t)a.first * 4 + (size_t)a.count * 4) ||
      overlaps(res, rlen, a.ends, (size_t)a.first * 4 + (size_t)a.count * 4) ||
      overlaps(res, rlen, a.st, STATE_SIZE) || overlaps(res, rlen, a.buf, a.len)) {
    napi_throw_range_error(env, NULL, "tulipwire_mac: results share memory with the offsets, the key state or the buffer");
    return NULL;
  }
  uint32_t ok = 0;
  uint8_t tag[TAG_SIZE], tag2[TAG_SIZE];
  uint32_t i = a.first, n = a.first + a.count;
#ifdef TW_HAVE_SHANI_CODE
  if (shani_enabled) {
    for (; i + 1 < n; i += 2) {
      hmac_shani(a.st, a.buf + a.starts[i], a.ends[i] - a.starts[i], tag,
                 a.buf + a.starts[i + 1], a.ends[i + 1] - a.starts[i + 1], tag2, TAG_SIZE);
      ok += check_tag(&a, res, i, tag);
      ok += check_tag(&a, res, i + 1, tag2);
    }
    if (i < n) {
      hmac_shani(a.st, a.buf + a.starts[i], a.ends[i] - a.starts[i], tag, NULL, 0, NULL, TAG_SIZE);
      ok += check_tag(&a, res, i, tag);
      i++;
    }
  }
#endif
  for (; i < n; i++) {
    hmac_one(a.st, a.buf + a.starts[i], a.ends[i] - a.starts[i], tag);
    ok += check_tag(&a, res, i, tag);
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
  if (!not_shared(env, argv[0], "tulipwire_mac: a key state in a SharedArrayBuffer")) return NULL;
  if (!check_state(env, st, stlen)) return NULL;
  if (!get_bytes(env, argv[1], &data, &len)) return NULL;
  if (!get_index(env, argv[2], &start) || !get_index(env, argv[3], &end)) return NULL;
  if (!get_bytes(env, argv[4], &out, &olen)) return NULL;
  if (start > end || end > len || olen < TAG_SIZE) {
    napi_throw_range_error(env, NULL, "tulipwire_mac: range outside the buffer");
    return NULL;
  }
#ifdef TW_HAVE_SHANI_CODE
  if (shani_enabled) {
    hmac_shani((const SHA256_CTX *)st, data + start, end - start, out, NULL, 0, NULL, 0);
    return NULL;
  }
#endif
  hmac_one((const SHA256_CTX *)st, data + start, end - start, out);
  return NULL;
}

/* useAccel(on: boolean): boolean — turns the SHA-extension path on or off (on only where the CPU has it); returns
 * whether it is now in use. For tests and benches; the default is on where available. */
static napi_value use_accel(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  bool on = false;
  if (argc < 1 || napi_get_value_bool(env, argv[0], &on) != napi_ok) {
    napi_throw_type_error(env, NULL, "tulipwire_mac: useAccel(on: boolean)");
    return NULL;
  }
  shani_enabled = on && shani_available;
  napi_value r;
  CHECK(napi_get_boolean(env, shani_enabled != 0, &r));
  return r;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    {"prepareKey", NULL, prepare_key, NULL, NULL, NULL, napi_enumerable, NULL},
    {"signBatch", NULL, sign_batch, NULL, NULL, NULL, napi_enumerable, NULL},
    {"verifyBatch", NULL, verify_batch, NULL, NULL, NULL, napi_enumerable, NULL},
    {"mac", NULL, mac_one, NULL, NULL, NULL, napi_enumerable, NULL},
    {"useAccel", NULL, use_accel, NULL, NULL, NULL, napi_enumerable, NULL},
  };
#ifdef TW_HAVE_SHANI_CODE
  shani_available = cpu_has_shani();
#endif
  shani_enabled = shani_available;
  CHECK(napi_define_properties(env, exports, sizeof props / sizeof props[0], props));
  napi_value v;
  CHECK(napi_create_uint32(env, (uint32_t)STATE_SIZE, &v));
  CHECK(napi_set_named_property(env, exports, "stateSize", v));
  napi_value acc;
  CHECK(napi_get_boolean(env, shani_available != 0, &acc));
  CHECK(napi_set_named_property(env, exports, "accelAvailable", acc));
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
