"""An independent Python implementation of the tulipwire wire format, version 1, written from
docs/wire-format.md alone (not from src/), and the interop peer that test/interop/python-peer.test.ts runs.

What it implements, by section of docs/wire-format.md:

- §1 frames (4-byte big-endian length, reassembly across reads, maxFrameSize checked from the 4 length bytes);
- §2 the envelope header and its structural checks (the kid's characters are not checked: an unknown kid, whatever
  its bytes, is TW_UNKNOWN_KEY_ID at §6 step 3);
- §3 the tag: HMAC-SHA256 over the envelope bytes before the tag, compared in constant time;
- §4.1 the keyring and the direction keys HKDF-SHA256(secret, salt = B, info = "tulipwire/1 c2s" | "... s2c");
  §4.2 (TLS binding) only for the test vectors: Python's ssl module has no TLS exporter
  (SSL_export_keying_material), so the live peer runs unbound (flags bit 0 = 0, B empty) and the tulipwire server
  it talks to is configured with bindToTls: false;
- §5 the payload check (msgpack, shape, limits) and an encoder that writes what §5 says tulipwire writes;
- §6 verification, every step in the documented order with its error code (and lateBy);
- §7 sending; §8 and the RPC section: REQUEST/RESPONSE/ERROR/NOTIFY/CANCEL shapes, idempotent retries.

Runs with Debian's interpreter (`command -p python3`), standard library plus msgpack (python3-msgpack) only.

Usage:
  wire_peer.py vectors --doc docs/wire-format.md
      checks every fenced wire-vector / wire-reject / rpc-vector block of the document, plus self-tests of each
      verification step; prints one JSON report and exits 0 when every check passed, 1 otherwise.
  wire_peer.py client --host 127.0.0.1 --port N --ca ca.pem --cert chain.pem --key key.pem
                      --secret-hex HEX --kid k1 --scenario main|bound
      a live client over mutual TLS against a tulipwire server (see python-peer.test.ts for the server's
      handlers); prints one JSON report ({"checks": [...], "observed": {...}}) and exits 0 when every check
      passed, 1 otherwise.

Exit status 2 with {"error": {"code": ...}} on stdout is a usage or environment error (PEER_MSGPACK_MISSING,
PEER_USAGE). A connection that fails or breaks mid-scenario is a failed check named "connection".
"""

import argparse
import hashlib
import hmac
import json
import math
import os
import re
import socket
import ssl
import struct
import sys
import time

try:
    import msgpack
except ImportError:  # pragma: no cover - reported to the test as a stable code
    print(json.dumps({"error": {"code": "PEER_MSGPACK_MISSING",
                                "message": "python3-msgpack is not installed for this interpreter (" + sys.executable + ")"}}))
    sys.exit(2)

# ----------------------------------------------------------------------------------------------------------------
# Constants of the document

VERSION = 1
FLAG_TLS_BOUND = 0x01
KID_MAX = 32
HEADER_FIXED = 44          # version, kind, flags, kidLen (4) + seq, issuedAt, expiresAt (24) + nonce (16)
TAG_SIZE = 32
MIN_ENVELOPE = 78          # 44 + 1-byte kid + 1-byte payload + 32
MAX_SAFE = 2 ** 53 - 1
DEFAULT_MAX_FRAME = 1_048_576
DEFAULT_SKEW_S = 5
DEFAULT_MAX_TTL_S = 300
DEFAULT_TTL_S = 30
WINDOW = 128
MAX_DEPTH = 32
MAX_VALUES = 100_000
# What a sender's key ids are made of (§2); a receiver does not check it (§6 step 3 looks the bytes up).
KID_RE = re.compile(r"^[A-Za-z0-9._:-]{1,32}$")

KIND_REQUEST, KIND_RESPONSE, KIND_ERROR, KIND_NOTIFY, KIND_CANCEL = 1, 2, 3, 4, 5
KIND_MESSAGE = 16
MAX_ID = 2 ** 32 - 1
MAX_METHOD = 256


class WireError(Exception):
    """A rejected frame or message, with the stable code of docs/wire-format.md §6.1."""

    def __init__(self, code, message, late_by=None, fatal=False):
        super().__init__(message)
        self.code = code
        self.message = message
        self.late_by = late_by
        self.fatal = fatal

    def as_json(self):
        out = {"code": self.code, "message": self.message}
        if self.late_by is not None:
            out["lateBy"] = self.late_by
        return out


def now_ms():
    """The clock of §0: ms since the Unix epoch, as JavaScript's Date.now()."""
    return int(time.time() * 1000)


# ----------------------------------------------------------------------------------------------------------------
# §4 keys

def hkdf_sha256(ikm, salt, info, length=32):
    """RFC 5869 HKDF-SHA256; an empty salt is HashLen (32) zero bytes."""
    if not salt:
        salt = b"\x00" * 32
    prk = hmac.new(salt, ikm, hashlib.sha256).digest()
    out, block, counter = b"", b"", 1
    while len(out) < length:
        block = hmac.new(prk, block + info + bytes([counter]), hashlib.sha256).digest()
        out += block
        counter += 1
    return out[:length]


def direction_key(secret, direction, binding=None):
    """K_c2s / K_s2c of §4.1; `binding` is B (None or b'' when unbound)."""
    if direction not in ("c2s", "s2c"):
        raise ValueError("direction must be c2s or s2c")
    return hkdf_sha256(secret, binding or b"", ("tulipwire/1 " + direction).encode("ascii"), 32)


class Keyring:
    """kid -> secret; the signing kid is the one named `signing` (§4.1: the newest key marked for signing)."""

    def __init__(self, keys, signing=None):
        self.keys = dict(keys)
        for kid, secret in self.keys.items():
            if not KID_RE.match(kid):
                raise ValueError("bad kid " + repr(kid))
            if len(secret) < 32:
                raise ValueError("a secret has at least 32 bytes")
        self.signing = signing if signing is not None else (list(self.keys)[-1] if self.keys else None)


# ----------------------------------------------------------------------------------------------------------------
# §5 payload: encoder (what tulipwire writes) and decoder with the shape check

def encode_like_tulipwire(value):
    """Encodes `value` as §5 says tulipwire writes msgpack: map16 headers always, ints up to uint32/int32, larger
    integers (and every non-integral number) as float64, str as UTF-8, bytes as bin. Python floats with an
    integral value are written as integers, because JavaScript has one number type."""
    out = bytearray()

    def number(n):
        if isinstance(n, float):
            if not math.isfinite(n):
                raise ValueError("NaN and infinities cannot be sent")
            if n.is_integer() and -(2 ** 31) <= n <= 2 ** 32 - 1:
                return number(int(n))
            out.extend(b"\xcb" + struct.pack(">d", n))
            return
        if 0 <= n <= 0x7F:
            out.append(n)
        elif -32 <= n < 0:
            out.append(n & 0xFF)
        elif 0 <= n <= 0xFF:
            out.extend(b"\xcc" + struct.pack(">B", n))
        elif 0 <= n <= 0xFFFF:
            out.extend(b"\xcd" + struct.pack(">H", n))
        elif 0 <= n <= 0xFFFFFFFF:
            out.extend(b"\xce" + struct.pack(">I", n))
        elif -128 <= n < 0:
            out.extend(b"\xd0" + struct.pack(">b", n))
        elif -32768 <= n < 0:
            out.extend(b"\xd1" + struct.pack(">h", n))
        elif -(2 ** 31) <= n < 0:
            out.extend(b"\xd2" + struct.pack(">i", n))
        else:
            out.extend(b"\xcb" + struct.pack(">d", float(n)))

    def walk(v):
        if v is None:
            out.append(0xC0)
        elif v is True:
            out.append(0xC3)
        elif v is False:
            out.append(0xC2)
        elif isinstance(v, (int, float)):
            number(v)
        elif isinstance(v, str):
            b = v.encode("utf-8")
            n = len(b)
            if n < 32:
                out.append(0xA0 | n)
            elif n <= 0xFF:
                out.extend(b"\xd9" + struct.pack(">B", n))
            elif n <= 0xFFFF:
                out.extend(b"\xda" + struct.pack(">H", n))
            else:
                out.extend(b"\xdb" + struct.pack(">I", n))
            out.extend(b)
        elif isinstance(v, (bytes, bytearray, memoryview)):
            b = bytes(v)
            n = len(b)
            if n <= 0xFF:
                out.extend(b"\xc4" + struct.pack(">B", n))
            elif n <= 0xFFFF:
                out.extend(b"\xc5" + struct.pack(">H", n))
            else:
                out.extend(b"\xc6" + struct.pack(">I", n))
            out.extend(b)
        elif isinstance(v, (list, tuple)):
            n = len(v)
            if n < 16:
                out.append(0x90 | n)
            elif n <= 0xFFFF:
                out.extend(b"\xdc" + struct.pack(">H", n))
            else:
                out.extend(b"\xdd" + struct.pack(">I", n))
            for x in v:
                walk(x)
        elif isinstance(v, dict):
            n = len(v)
            if n <= 0xFFFF:
                out.extend(b"\xde" + struct.pack(">H", n))
            else:
                out.extend(b"\xdf" + struct.pack(">I", n))
            for k, x in v.items():
                if not isinstance(k, str):
                    raise ValueError("map keys are strings")
                walk(k)
                walk(x)
        else:
            raise ValueError("cannot encode " + type(v).__name__)

    walk(value)
    return bytes(out)


def encode_python(value):
    """msgpack-python's own encoding (fixmap, uint64 for large ints, ...): what a Python client would naturally
    send. §5: "A receiver must accept any valid msgpack encoding of the same value"."""
    return msgpack.packb(value, use_bin_type=True)


def decode_payload(payload, max_depth=MAX_DEPTH, max_values=MAX_VALUES, allow_big_ints=False):
    """§5 / §6 step 8: one msgpack value filling the payload exactly, then the shape check. Raises
    WireError(TW_BAD_PAYLOAD)."""
    def bad(why):
        return WireError("TW_BAD_PAYLOAD", why)

    if len(payload) == 0:
        raise bad("empty payload")
    try:
        # maps as their (key, value) pairs, so that a value a repeated key replaces is still checked and counted
        value = msgpack.unpackb(payload, raw=False, strict_map_key=False, use_list=True,
                                timestamp=0, object_pairs_hook=_Pairs)
    except msgpack.ExtraData:
        raise bad("trailing bytes after the value")
    except Exception as e:  # invalid or truncated msgpack, invalid UTF-8, unhashable keys, ...
        raise bad("invalid msgpack: " + type(e).__name__)

    count = 0

    def walk(v, depth):
        nonlocal count
        count += 1
        if count > max_values:
            raise bad("more than %d values" % max_values)
        if v is None or isinstance(v, bool) or isinstance(v, str) or isinstance(v, bytes):
            return v
        if isinstance(v, int):
            if not allow_big_ints and abs(v) > 2 ** 53:
                raise bad("integer beyond 2^53")
            return v
        if isinstance(v, float):
            if not math.isfinite(v):
                raise bad("NaN or infinity")
            return v
        if isinstance(v, _Pairs):
            # §5: every value of the payload is checked and counted, also one a repeated key replaces (the last
            # value wins in the map built from them)
            if depth + 1 > max_depth:
                raise bad("more than %d levels of nested containers" % max_depth)
            out = {}
            for k, x in v:
                if not isinstance(k, str):
                    raise bad("a map key is not a string")
                if k in ("__proto__", "constructor"):
                    raise bad("forbidden key " + k)
                out[k] = walk(x, depth + 1)
            return out
        if isinstance(v, list):
            if depth + 1 > max_depth:
                raise bad("more than %d levels of nested containers" % max_depth)
            return [walk(x, depth + 1) for x in v]
        # msgpack.ExtType, msgpack.Timestamp (ext -1), anything else
        raise bad("extension type or unsupported value: " + type(v).__name__)

    return walk(value, 0)


class _Pairs(list):
    """A msgpack map as decode_payload first sees it: the list of its (key, value) pairs, repeats included."""


# ----------------------------------------------------------------------------------------------------------------
# §1 frames, §2 envelope, §3 tag, §7 sending

def u64(n):
    return struct.pack(">Q", n)


def seal(key, kid, kind, flags, seq, issued_at, expires_at, nonce, payload):
    """§2/§3/§7: the frame `length ‖ body` with the tag HMAC(key, body before the tag)."""
    kid_b = kid.encode("ascii") if isinstance(kid, str) else bytes(kid)
    body = (bytes([VERSION, kind, flags, len(kid_b)]) + kid_b + u64(seq) + u64(issued_at) + u64(expires_at)
            + bytes(nonce) + bytes(payload))
    tag = hmac.new(key, body, hashlib.sha256).digest()
    body += tag
    return struct.pack(">I", len(body)) + body


def raw_envelope(key, version=VERSION, kind=16, flags=0, kid=b"k1", kid_len=None, seq=1, issued_at=0,
                 expires_at=0, nonce=b"\x00" * 16, payload=b"\xc0"):
    """An envelope with any field set to anything (for the deliberately bad frames), correctly MACed."""
    kid_b = kid.encode("ascii") if isinstance(kid, str) else bytes(kid)
    body = (bytes([version, kind, flags, len(kid_b) if kid_len is None else kid_len]) + kid_b + u64(seq)
            + u64(issued_at) + u64(expires_at) + bytes(nonce) + bytes(payload))
    body += hmac.new(key, body, hashlib.sha256).digest()
    return struct.pack(">I", len(body)) + body


class FrameDecoder:
    """§1: reassembles frames from chunks; a length over max_frame_size is refused from the 4 bytes alone."""

    def __init__(self, max_frame_size=DEFAULT_MAX_FRAME):
        self.max = max_frame_size
        self.buf = bytearray()

    def feed(self, data):
        self.buf.extend(data)
        bodies = []
        while len(self.buf) >= 4:
            (length,) = struct.unpack_from(">I", self.buf, 0)
            if length > self.max:
                raise WireError("TW_FRAME_TOO_LARGE", "frame of %d bytes over %d" % (length, self.max), fatal=True)
            if len(self.buf) < 4 + length:
                break
            bodies.append(bytes(self.buf[4:4 + length]))
            del self.buf[:4 + length]
        return bodies


class ReplayWindow:
    """§6 step 6: RFC 4303 §3.4.3 anti-replay window of width 128."""

    def __init__(self, width=WINDOW):
        self.width = width
        self.top = 0
        self.seen = set()

    def check(self, seq):
        if seq > self.top:
            return True
        if seq <= self.top - self.width:
            return False
        return seq not in self.seen

    def record(self, seq):
        if seq > self.top:
            self.top = seq
            floor = self.top - self.width
            self.seen = {s for s in self.seen if s > floor}
        self.seen.add(seq)


class MemoryNonceStore:
    """§6 step 7: reserve(nonce, ttl_ms) is true exactly once while the nonce is remembered."""

    def __init__(self, clock=now_ms):
        self.clock = clock
        self.until = {}

    def reserve(self, nonce, ttl_ms):
        now = self.clock()
        for n in [n for n, t in self.until.items() if t <= now]:
            del self.until[n]
        if nonce in self.until:
            return False
        self.until[nonce] = now + ttl_ms
        return True


class Meta:
    """What a verified message carried besides its payload."""

    def __init__(self, kind, flags, kid, seq, issued_at, expires_at, nonce):
        self.kind, self.flags, self.kid, self.seq = kind, flags, kid, seq
        self.issued_at, self.expires_at, self.nonce = issued_at, expires_at, nonce

    def as_json(self):
        return {"kind": self.kind, "flags": self.flags, "kid": self.kid, "seq": self.seq,
                "issuedAt": self.issued_at, "expiresAt": self.expires_at, "nonce": self.nonce.hex()}


def parse_header(body, bound):
    """§2 and §6 step 2; `bound` is the receiver's own TLS-binding setting. Raises TW_MALFORMED_ENVELOPE."""
    def bad(why):
        return WireError("TW_MALFORMED_ENVELOPE", why)

    if len(body) < MIN_ENVELOPE:
        raise bad("envelope of %d bytes, shorter than %d" % (len(body), MIN_ENVELOPE))
    version, kind, flags, k = body[0], body[1], body[2], body[3]
    if version != VERSION:
        raise bad("version %d" % version)
    if kind == 0:
        raise bad("kind 0")
    if flags & 0xFE:
        raise bad("reserved flag bits set: 0x%02x" % flags)
    if bool(flags & FLAG_TLS_BOUND) != bool(bound):
        raise bad("the sender %s its keys to the TLS session and this receiver %s (bindToTls)"
                  % ("binds" if flags & FLAG_TLS_BOUND else "does not bind", "does" if bound else "does not"))
    if k < 1 or k > KID_MAX:
        raise bad("kidLen %d" % k)
    if HEADER_FIXED + k + 1 + TAG_SIZE > len(body):
        raise bad("kidLen %d leaves no payload byte" % k)
    # §2/§6 step 3: the kid's bytes are not checked here; one that names no key is TW_UNKNOWN_KEY_ID, whatever its
    # bytes (latin1 maps each byte to one character, so no two kids compare equal by accident).
    kid = body[4:4 + k].decode("latin1")
    seq, issued_at, expires_at = struct.unpack_from(">QQQ", body, 4 + k)
    for name, v in (("seq", seq), ("issuedAt", issued_at), ("expiresAt", expires_at)):
        if v > MAX_SAFE:
            raise bad(name + " above 2^53-1")
    if seq == 0:
        raise bad("seq 0")
    if expires_at < issued_at:
        raise bad("expiresAt < issuedAt")
    nonce = body[28 + k:44 + k]
    return Meta(kind, flags, kid, seq, issued_at, expires_at, nonce), 44 + k


class Receiver:
    """§6: verifies frames of one connection, in order, for the side `side` ('client' receives s2c)."""

    def __init__(self, keyring, side, binding=None, skew_s=DEFAULT_SKEW_S, max_ttl_s=DEFAULT_MAX_TTL_S,
                 clock=now_ms, nonce_store=None, max_frame_size=DEFAULT_MAX_FRAME):
        self.keyring = keyring
        self.side = side
        self.recv_dir = "c2s" if side == "server" else "s2c"
        self.binding = binding
        self.skew_ms = int(round(skew_s * 1000))
        self.max_ttl_ms = int(round(max_ttl_s * 1000))
        self.clock = clock
        self.nonce_store = nonce_store
        self.window = ReplayWindow()
        self.frames = FrameDecoder(max_frame_size)
        self._keys = {}

    def key_for(self, kid):
        if kid not in self._keys:
            self._keys[kid] = direction_key(self.keyring.keys[kid], self.recv_dir, self.binding)
        return self._keys[kid]

    def open(self, body):
        """Steps 2-8 for one frame body; returns (meta, value) or raises WireError."""
        meta, pay_start = parse_header(body, self.binding is not None)                       # 2
        if meta.kid not in self.keyring.keys:                                                  # 3
            raise WireError("TW_UNKNOWN_KEY_ID", "unknown key id " + meta.kid)
        tag_at = len(body) - TAG_SIZE
        want = hmac.new(self.key_for(meta.kid), body[:tag_at], hashlib.sha256).digest()
        if not hmac.compare_digest(want, body[tag_at:]):                                       # 4
            raise WireError("TW_BAD_SIGNATURE", "the tag does not match")
        now = self.clock()                                                                     # 5
        if meta.issued_at > now + self.skew_ms:
            raise WireError("TW_BAD_TIME_SIGNATURE", "signed in the future")
        if now > meta.expires_at + self.skew_ms:
            raise WireError("TW_SIGNATURE_EXPIRED", "expired",
                            late_by=(now - meta.expires_at - self.skew_ms) / 1000)
        if meta.expires_at - meta.issued_at > self.max_ttl_ms:
            raise WireError("TW_MALFORMED_ENVELOPE", "lifetime over maxTtl")
        if not self.window.check(meta.seq):                                                    # 6
            raise WireError("TW_REPLAYED_MESSAGE", "seq %d already seen or too old" % meta.seq)
        self.window.record(meta.seq)
        if self.nonce_store is not None:                                                       # 7
            if not self.nonce_store.reserve(bytes(meta.nonce), max(0, meta.expires_at + self.skew_ms - now) + 1):
                raise WireError("TW_REPLAYED_MESSAGE", "nonce already reserved")
        value = decode_payload(body[pay_start:tag_at])                                         # 8
        return meta, value

    def feed(self, data):
        """Step 1 then open() per frame; returns a list of (meta, value) or WireError, in arrival order.
        A TW_FRAME_TOO_LARGE is raised (fatal)."""
        out = []
        for body in self.frames.feed(data):
            try:
                out.append(self.open(body))
            except WireError as e:
                out.append(e)
        return out


class Sender:
    """§7: per connection, seq 1, 2, 3 ...; issuedAt now, expiresAt = issuedAt + ttl; fresh 16-byte nonces."""

    def __init__(self, keyring, side, binding=None, ttl_s=DEFAULT_TTL_S, clock=now_ms):
        self.keyring = keyring
        self.send_dir = "c2s" if side == "client" else "s2c"
        self.binding = binding
        self.ttl_ms = int(round(ttl_s * 1000))
        self.clock = clock
        self.seq = 0

    def key(self, kid=None):
        kid = kid or self.keyring.signing
        return direction_key(self.keyring.keys[kid], self.send_dir, self.binding)

    def next_seq(self):
        self.seq += 1
        return self.seq

    def frame(self, kind, payload, seq=None, issued_at=None, expires_at=None, nonce=None, ttl_ms=None):
        if seq is None:
            seq = self.next_seq()
        issued = self.clock() if issued_at is None else issued_at
        expires = issued + (self.ttl_ms if ttl_ms is None else ttl_ms) if expires_at is None else expires_at
        flags = FLAG_TLS_BOUND if self.binding is not None else 0
        return seal(self.key(), self.keyring.signing, kind, flags, seq, issued, expires,
                    os.urandom(16) if nonce is None else nonce, payload)


# ----------------------------------------------------------------------------------------------------------------
# RPC shapes (docs/wire-format.md, section RPC)

def is_id(v):
    return isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= MAX_ID


def is_method(v):
    return isinstance(v, str) and 1 <= len(v.encode("utf-8")) <= MAX_METHOD


def check_rpc_shape(kind, value):
    """Returns None when `value` is a well-formed payload of RPC kind `kind`, else the reason."""
    if not isinstance(value, list):
        return "not an array"
    n = len(value)
    if kind == KIND_REQUEST:
        if n not in (3, 4):
            return "REQUEST has %d elements" % n
        if not is_id(value[0]):
            return "bad id"
        if not is_method(value[1]):
            return "bad method"
        if n == 4 and not isinstance(value[3], dict):
            return "options not a map"
        return None
    if kind == KIND_RESPONSE:
        return None if n == 2 and is_id(value[0]) else "bad RESPONSE"
    if kind == KIND_ERROR:
        if n != 4:
            return "ERROR has %d elements" % n
        if not (value[0] is None or is_id(value[0])):
            return "bad id"
        if not isinstance(value[1], str) or not isinstance(value[2], str):
            return "code and message are strings"
        return None
    if kind == KIND_NOTIFY:
        if n not in (2, 3) or not is_method(value[0]):
            return "bad NOTIFY"
        if n == 3 and not isinstance(value[2], dict):
            return "options not a map"
        return None
    if kind == KIND_CANCEL:
        return None if n == 1 and is_id(value[0]) else "bad CANCEL"
    return "not an RPC kind"


# ----------------------------------------------------------------------------------------------------------------
# Checks and reporting

class Report:
    """Collects named checks; `ok` is true when every check passed."""

    def __init__(self):
        self.checks = []
        self.observed = {}

    def check(self, name, ok, expected=None, got=None):
        entry = {"name": name, "ok": bool(ok)}
        if not ok or expected is not None:
            entry["expected"] = jsonable(expected)
            entry["got"] = jsonable(got)
        self.checks.append(entry)
        return bool(ok)

    def eq(self, name, got, expected):
        return self.check(name, strict_equal(got, expected), expected, got)

    @property
    def ok(self):
        return all(c["ok"] for c in self.checks)

    def dump(self):
        failures = [c for c in self.checks if not c["ok"]]
        return {"ok": self.ok, "count": len(self.checks), "failures": failures, "checks": self.checks,
                "observed": jsonable(self.observed)}


def jsonable(v):
    if isinstance(v, (bytes, bytearray, memoryview)):
        return {"$bin": bytes(v).hex()}
    if isinstance(v, float) and not math.isfinite(v):
        return repr(v)
    if isinstance(v, dict):
        return {str(k): jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [jsonable(x) for x in v]
    if isinstance(v, WireError):
        return v.as_json()
    if isinstance(v, Meta):
        return v.as_json()
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    return repr(v)


def strict_equal(a, b):
    """Value equality that does not confuse True with 1 (Python's bool is an int), and compares numbers by value
    (tulipwire writes 1700000000000 as float64)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    if isinstance(a, (bytes, bytearray)) and isinstance(b, (bytes, bytearray)):
        return bytes(a) == bytes(b)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(strict_equal(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(strict_equal(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


# ----------------------------------------------------------------------------------------------------------------
# `vectors`: the document's blocks

BLOCK_RE = re.compile(r"```([a-z][a-z0-9-]*)\n(.*?)```", re.S)
KNOWN_BLOCKS = ("wire-vector", "wire-reject", "rpc-vector")


def parse_blocks(doc):
    """Every fenced block whose info string starts with wire- or rpc-, as (tag, {field: value}); the fields are
    `name: value` lines split at the first colon (as test/wire/vectors.test.ts does)."""
    out = []
    for m in BLOCK_RE.finditer(doc):
        tag = m.group(1)
        if not (tag.startswith("wire-") or tag.startswith("rpc-")):
            continue
        fields = {}
        for line in m.group(2).split("\n"):
            i = line.find(":")
            if i > 0:
                fields[line[:i].strip()] = line[i + 1:].strip()
        out.append((tag, fields))
    return out


def parse_keyring(text):
    keys = {}
    for part in text.split(","):
        part = part.strip()
        if part:
            kid, secret = part.split("=", 1)
            keys[kid.strip()] = bytes.fromhex(secret.strip())
    return Keyring(keys)


def check_wire_vector(r, v):
    name = "vector " + v["name"]
    secret = bytes.fromhex(v["secret"])
    binding = None if v["binding"] == "none" else bytes.fromhex(v["binding"])
    direction = v["direction"]
    key = direction_key(secret, direction, binding)
    r.eq(name + ": directionKey = HKDF-SHA256(secret, salt=B, info)", key.hex(), v["directionKey"])
    value = json.loads(v["json"])
    payload = bytes.fromhex(v["payload"])
    r.eq(name + ": payload = tulipwire's encoding of json (§5)", encode_like_tulipwire(value).hex(), v["payload"])
    try:
        decoded = decode_payload(payload)
        r.eq(name + ": payload decodes to json", decoded, value)
    except WireError as e:
        r.check(name + ": payload decodes to json", False, v["json"], e.as_json())
    frame = seal(bytes.fromhex(v["directionKey"]), v["kid"], int(v["kind"]), int(v["flags"]), int(v["seq"]),
                 int(v["issuedAtMs"]), int(v["expiresAtMs"]), bytes.fromhex(v["nonce"]), payload)
    r.eq(name + ": frame built from the fields (§2, §3)", frame.hex(), v["frame"])
    receiver_side = "server" if direction == "c2s" else "client"
    now = int(v["now"])
    rx = Receiver(Keyring({v["kid"]: secret}), receiver_side, binding=binding, clock=lambda: now)
    got = rx.feed(bytes.fromhex(v["frame"]))
    ok = len(got) == 1 and not isinstance(got[0], WireError)
    r.check(name + ": verifies at now on the " + receiver_side, ok, "accepted", got)
    if ok:
        meta, val = got[0]
        r.eq(name + ": verified fields", [meta.kind, meta.flags, meta.kid, meta.seq, meta.issued_at, meta.expires_at,
                                          meta.nonce.hex()],
             [int(v["kind"]), int(v["flags"]), v["kid"], int(v["seq"]), int(v["issuedAtMs"]), int(v["expiresAtMs"]),
              v["nonce"]])
        r.eq(name + ": verified payload", val, value)
    # the same frame reflected to its sender does not verify (§3)
    sender_side = "client" if direction == "c2s" else "server"
    back = Receiver(Keyring({v["kid"]: secret}), sender_side, binding=binding, clock=lambda: now).feed(
        bytes.fromhex(v["frame"]))
    r.eq(name + ": reflected to its sender is TW_BAD_SIGNATURE",
         [getattr(x, "code", "accepted") for x in back], ["TW_BAD_SIGNATURE"])
    # split anywhere (§1): byte by byte gives the same
    rx2 = Receiver(Keyring({v["kid"]: secret}), receiver_side, binding=binding, clock=lambda: now)
    results = []
    for b in bytes.fromhex(v["frame"]):
        results.extend(rx2.feed(bytes([b])))
    r.eq(name + ": reassembled from 1-byte chunks", [getattr(x, "code", "accepted") for x in results], ["accepted"])
    if v["name"].startswith("rpc-"):
        shape = check_rpc_shape(int(v["kind"]), value)
        r.check(name + ": RPC shape of kind " + v["kind"], shape is None, None, shape)


def check_wire_reject(r, v):
    name = "reject " + v["name"]
    now = int(v["now"])
    # The block has no binding field: the receivers are unbound (bound-frame-to-unbound-receiver says so).
    rx = Receiver(parse_keyring(v["keyring"]), v["receiver"], binding=None, skew_s=float(v["skew"]),
                  clock=lambda: now)
    got = rx.feed(bytes.fromhex(v["frame"]))
    codes = [x.code if isinstance(x, WireError) else "accepted" for x in got]
    r.eq(name + ": code", codes, [v["code"]])
    if "lateBy" in v:
        late = got[0].late_by if got and isinstance(got[0], WireError) else None
        r.check(name + ": lateBy", late is not None and abs(late - float(v["lateBy"])) < 1e-9, float(v["lateBy"]), late)


def python_rpc_answer(request):
    """What this peer's RPC server side answers to a REQUEST payload (the vectors feed the request to it)."""
    handlers = {"add": lambda p: p[0] + p[1]}
    rid, method, params = request[0], request[1], request[2]
    if method not in handlers:
        return KIND_ERROR, [rid, "TW_METHOD_NOT_FOUND", "no handler for " + method, {"method": method}]
    return KIND_RESPONSE, [rid, handlers[method](params)]


def check_rpc_vector(r, v):
    name = "rpc-vector " + v["name"]
    value = json.loads(v["json"])
    r.eq(name + ": encoding", encode_like_tulipwire(value).hex(), v["msgpack"])
    try:
        decoded = decode_payload(bytes.fromhex(v["msgpack"]))
        r.eq(name + ": decodes", decoded, value)
        shape = check_rpc_shape(int(v["kind"]), decoded)
        r.check(name + ": RPC shape of kind " + v["kind"], shape is None, None, shape)
        # msgpack-python's own (different) encoding of the same value decodes to the same value
        r.eq(name + ": any valid encoding", decode_payload(encode_python(value)), value)
    except WireError as e:
        r.check(name + ": decodes", False, v["json"], e.as_json())


def self_tests(r):
    """Each step of §6 on frames built here, beyond the document's vectors."""
    secret = bytes(range(32))
    ring = Keyring({"k1": secret, "k": secret})
    kc2s = direction_key(secret, "c2s")
    t0 = 1767225600000
    now = t0 + 1000

    def rx(**kw):
        return Receiver(ring, "server", clock=lambda: now, **kw)

    def codes(frames, receiver=None):
        receiver = receiver or rx()
        out = []
        for f in frames:
            out.extend(receiver.feed(f))
        return [x.code if isinstance(x, WireError) else "accepted" for x in out]

    def env(**kw):
        base = dict(key=kc2s, kid=b"k1", seq=1, issued_at=t0, expires_at=t0 + 30000, payload=b"\xc0")
        base.update(kw)
        return raw_envelope(**base)

    r.eq("self: the smallest envelope is 78 bytes and valid", [len(env(kid=b"k")) - 4, codes([env(kid=b"k")])],
         [78, ["accepted"]])
    short = env(kid=b"k")[4:-1]
    short = struct.pack(">I", len(short)) + short
    r.eq("self: 77-byte envelope", codes([short]), ["TW_MALFORMED_ENVELOPE"])
    cases = {
        "version 0": env(version=0), "kind 0": env(kind=0), "reserved flag bit 7": env(flags=0x80),
        "bound flag to an unbound receiver": env(flags=1), "kidLen 0": env(kid=b"", kid_len=0, payload=b"\xc0\xc0"),
        "kidLen 33": env(kid=b"k" * 33), "seq 0": env(seq=0),
        "seq 2^53": env(seq=2 ** 53), "issuedAt 2^53": env(issued_at=2 ** 53, expires_at=2 ** 53),
        "expiresAt < issuedAt": env(expires_at=t0 - 1), "lifetime 300.001 s": env(expires_at=t0 + 300001),
        "kidLen past the end": env(kid_len=40),
    }
    for label, f in cases.items():
        r.eq("self: " + label, codes([f]), ["TW_MALFORMED_ENVELOPE"])
    r.eq("self: lifetime exactly maxTtl", codes([env(expires_at=t0 + 300000)]), ["accepted"])
    r.eq("self: a kid outside the §2 alphabet is looked up, not a header error (§6 step 3)",
         codes([env(kid=b"k 1"), env(kid=b"k\xff"), env(kid=b"k\x00")]),
         ["TW_UNKNOWN_KEY_ID", "TW_UNKNOWN_KEY_ID", "TW_UNKNOWN_KEY_ID"])
    r.eq("self: unknown kid is found before the tag", codes([raw_envelope(b"\x00" * 32, kid=b"zz", seq=1, issued_at=t0,
                                                                          expires_at=t0 + 1)]), ["TW_UNKNOWN_KEY_ID"])
    r.eq("self: the tag is checked before the times", codes([raw_envelope(b"\x00" * 32, kid=b"k1", seq=1, issued_at=0,
                                                                          expires_at=1)]), ["TW_BAD_SIGNATURE"])
    r.eq("self: maxTtl is checked after the tag",
         codes([raw_envelope(b"\x00" * 32, seq=1, issued_at=t0, expires_at=t0 + 400000)]), ["TW_BAD_SIGNATURE"])
    # times, at the edges of skew
    r.eq("self: issuedAt = now + skew is accepted", codes([env(issued_at=now + 5000, expires_at=now + 6000)]),
         ["accepted"])
    r.eq("self: issuedAt = now + skew + 1 ms", codes([env(issued_at=now + 5001, expires_at=now + 6000)]),
         ["TW_BAD_TIME_SIGNATURE"])
    r.eq("self: now = expiresAt + skew is accepted", codes([env(issued_at=now - 6000, expires_at=now - 5000)]),
         ["accepted"])
    e = rx().feed(env(issued_at=now - 6000, expires_at=now - 5001))
    r.eq("self: now = expiresAt + skew + 1 ms", [e[0].code, e[0].late_by], ["TW_SIGNATURE_EXPIRED", 0.001])
    # sequence window
    window_frames = [env(seq=s) for s in (1, 1, 200, 72, 73, 150, 150, 73, 201)]
    r.eq("self: window (dup, too old = top-128, edge top-127, within, dup, fresh)", codes(window_frames),
         ["accepted", "TW_REPLAYED_MESSAGE", "accepted", "TW_REPLAYED_MESSAGE", "accepted", "accepted",
          "TW_REPLAYED_MESSAGE", "TW_REPLAYED_MESSAGE", "accepted"])
    r.eq("self: a seq rejected by the tag is not recorded",
         codes([raw_envelope(b"\x00" * 32, seq=5, issued_at=t0, expires_at=t0 + 1), env(seq=5)]),
         ["TW_BAD_SIGNATURE", "accepted"])
    r.eq("self: a seq of a message refused for its payload is recorded",
         codes([env(seq=5, payload=b"\xd4\x01\x00"), env(seq=5)]), ["TW_BAD_PAYLOAD", "TW_REPLAYED_MESSAGE"])
    # nonce store
    store = MemoryNonceStore(clock=lambda: now)
    n = b"\x42" * 16
    r.eq("self: a reused nonce with a fresh seq (nonce store)",
         codes([env(seq=1, nonce=n), env(seq=2, nonce=n), env(seq=3)], rx(nonce_store=store)),
         ["accepted", "TW_REPLAYED_MESSAGE", "accepted"])
    # a replay on another connection sharing the store, at the last instant step 5 accepts (now = expiresAt + skew)
    clock = [now]
    edge_store = MemoryNonceStore(clock=lambda: clock[0])
    first = Receiver(ring, "server", clock=lambda: clock[0], nonce_store=edge_store)
    second = Receiver(ring, "server", clock=lambda: clock[0], nonce_store=edge_store)
    edge = env(seq=1, nonce=b"\x43" * 16)
    got = codes([edge], first)
    clock[0] = t0 + 30000 + first.skew_ms
    got += codes([edge], second)
    r.eq("self: a replay on another connection at exactly expiresAt + skew (nonce store)", got,
         ["accepted", "TW_REPLAYED_MESSAGE"])
    # frame size
    try:
        rx(max_frame_size=100).feed(struct.pack(">I", 101))
        r.check("self: length over maxFrameSize from the 4 bytes alone", False, "TW_FRAME_TOO_LARGE", "nothing")
    except WireError as e:
        r.eq("self: length over maxFrameSize from the 4 bytes alone", [e.code, e.fatal], ["TW_FRAME_TOO_LARGE", True])
    # payloads
    deep_ok = b"\x91" * 31 + b"\x90"   # 32 nested arrays
    deep_bad = b"\x91" * 32 + b"\x90"  # 33
    payloads = {
        "nil": (b"\xc0", "accepted"), "32 nested containers": (deep_ok, "accepted"),
        "33 nested containers": (deep_bad, "TW_BAD_PAYLOAD"), "ext 1": (b"\xd4\x01\x00", "TW_BAD_PAYLOAD"),
        "timestamp ext": (b"\xd6\xff\x00\x00\x00\x01", "TW_BAD_PAYLOAD"),
        "NaN": (b"\xcb" + struct.pack(">d", float("nan")), "TW_BAD_PAYLOAD"),
        "float32 infinity": (b"\xca" + struct.pack(">f", float("inf")), "TW_BAD_PAYLOAD"),
        "uint64 2^53": (b"\xcf" + u64(2 ** 53), "accepted"), "uint64 2^53+1": (b"\xcf" + u64(2 ** 53 + 1), "TW_BAD_PAYLOAD"),
        "int64 -2^53-1": (b"\xd3" + struct.pack(">q", -(2 ** 53) - 1), "TW_BAD_PAYLOAD"),
        "key __proto__": (encode_python({"__proto__": 1}), "TW_BAD_PAYLOAD"),
        "key constructor": (encode_python({"a": {"constructor": 1}}), "TW_BAD_PAYLOAD"),
        "int key": (b"\x81\x01\x01", "TW_BAD_PAYLOAD"), "bin key": (b"\x81\xc4\x01a\x01", "TW_BAD_PAYLOAD"),
        "trailing byte": (b"\xc0\xc0", "TW_BAD_PAYLOAD"), "truncated": (b"\x92\x01", "TW_BAD_PAYLOAD"),
        "invalid UTF-8": (b"\xa1\xff", "TW_BAD_PAYLOAD"), "reserved byte c1": (b"\xc1", "TW_BAD_PAYLOAD"),
        "fixmap with fixint": (b"\x81\xa1a\x01", "accepted"),
        "100,000 values": (b"\xdd" + struct.pack(">I", 99999) + b"\xc0" * 99999, "accepted"),
        "100,001 values": (b"\xdd" + struct.pack(">I", 100000) + b"\xc0" * 100000, "TW_BAD_PAYLOAD"),
    }
    for label, (p, want) in payloads.items():
        try:
            decode_payload(p)
            got = "accepted"
        except WireError as err:
            got = err.code
        r.eq("self: payload " + label, got, want)


def run_vectors(doc_path):
    with open(doc_path, encoding="utf-8") as f:
        doc = f.read()
    r = Report()
    blocks = parse_blocks(doc)
    counts = {t: 0 for t in KNOWN_BLOCKS}
    for tag, fields in blocks:
        if tag not in KNOWN_BLOCKS:
            r.check("unknown block type " + tag + " (not checked)", False, list(KNOWN_BLOCKS), tag)
            continue
        counts[tag] += 1
        try:
            {"wire-vector": check_wire_vector, "wire-reject": check_wire_reject, "rpc-vector": check_rpc_vector}[tag](r, fields)
        except Exception as e:  # a block this implementation cannot even read is a failed check
            r.check("%s %s: readable" % (tag, fields.get("name")), False, "no exception", repr(e))
    # the RPC request/response frames: the request's payload fed to this peer's handler gives the response's
    vectors = {f.get("name"): f for t, f in blocks if t == "wire-vector"}
    if "rpc-request-c2s" in vectors and "rpc-response-s2c" in vectors:
        kind, answer = python_rpc_answer(json.loads(vectors["rpc-request-c2s"]["json"]))
        r.eq("rpc-request-c2s answered by this peer = rpc-response-s2c payload",
             [kind, encode_like_tulipwire(answer).hex()],
             [int(vectors["rpc-response-s2c"]["kind"]), vectors["rpc-response-s2c"]["payload"]])
    self_tests(r)
    r.observed["blocks"] = counts
    r.observed["names"] = [f.get("name") for _, f in blocks]
    return r


# ----------------------------------------------------------------------------------------------------------------
# `client`: a live peer over mutual TLS

class LivePeer:
    """One mTLS connection to a tulipwire server, as its client: a Sender, a Receiver and an RPC endpoint."""

    def __init__(self, args, report, label):
        self.r = report
        self.label = label
        self.keyring = Keyring({args.kid: bytes.fromhex(args.secret_hex)}, signing=args.kid)
        self.sender = Sender(self.keyring, "client")
        self.receiver = Receiver(self.keyring, "client")
        self.next_id = 0
        self.replies = {}           # id -> (kind, payload, meta)
        self.nil_errors = []
        self.notifications = []     # (method, params, meta)
        self.messages = []          # other kinds: (meta, value)
        self.served = []            # requests the server made to us: (method, params, answer)
        self.rejected = []          # what this side refused from the server
        self.server_seqs = []
        self.sent_frames = []       # every frame written, for replays
        self.received_frames = []   # every frame body received, for reflection
        self.closed = False
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_3
        ctx.load_verify_locations(cafile=args.ca)
        ctx.load_cert_chain(certfile=args.cert, keyfile=args.key)
        ctx.check_hostname = True
        raw = socket.create_connection((args.host, args.port), timeout=10)
        self.sock = ctx.wrap_socket(raw, server_hostname="localhost")
        self.tls_version = self.sock.version()

    # sending
    def write(self, frame):
        self.sent_frames.append(frame)
        self.sock.sendall(frame)

    def send(self, kind, value, **kw):
        """Signs and writes `value` (encoded by msgpack-python) as a message of `kind`; returns the frame."""
        frame = self.sender.frame(kind, encode_python(value), **kw)
        self.write(frame)
        return frame

    def call(self, method, params=None, options=None, **kw):
        self.next_id += 1
        rid = self.next_id
        body = [rid, method, params] if not options else [rid, method, params, options]
        self.send(KIND_REQUEST, body, **kw)
        return rid

    # receiving
    def pump(self, until, timeout=5.0):
        """Reads and dispatches frames until until() is true or the deadline passes; returns until()."""
        deadline = time.monotonic() + timeout
        while not until():
            left = deadline - time.monotonic()
            if left <= 0 or self.closed:
                break
            self.sock.settimeout(min(left, 0.5))
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            except (ssl.SSLError, OSError):
                data = b""
            if not data:
                self.closed = True
                break
            for body in list(self.receiver.frames.feed(data)):
                self.received_frames.append(body)
                try:
                    meta, value = self.receiver.open(body)
                except WireError as e:
                    self.rejected.append(e.as_json())
                    continue
                self.dispatch(meta, value)
        return until()

    def wait_closed(self, timeout=5.0):
        return self.pump(lambda: self.closed, timeout)

    def dispatch(self, meta, value):
        self.server_seqs.append(meta.seq)
        kind = meta.kind
        if kind in (KIND_REQUEST, KIND_RESPONSE, KIND_ERROR, KIND_NOTIFY, KIND_CANCEL):
            why = check_rpc_shape(kind, value)
            if why is not None:
                self.rejected.append({"code": "TW_BAD_PAYLOAD", "message": why})
                return
        if kind in (KIND_RESPONSE, KIND_ERROR):
            if kind == KIND_ERROR and value[0] is None:
                self.nil_errors.append(value[1:])
            else:
                self.replies[value[0]] = (kind, value, meta)
        elif kind == KIND_NOTIFY:
            self.notifications.append((value[0], value[1], meta))
        elif kind == KIND_REQUEST:
            self.serve(value)
        elif kind == KIND_CANCEL:
            pass
        else:
            self.messages.append((meta, value))

    def serve(self, req):
        rid, method, params = req[0], req[1], req[2]
        if method == "py.mul":
            answer = (KIND_RESPONSE, [rid, params[0] * params[1]])
        elif method == "py.fail":
            answer = (KIND_ERROR, [rid, "PY_REFUSED", "python refuses", {"why": "asked to"}])
        else:
            answer = (KIND_ERROR, [rid, "TW_METHOD_NOT_FOUND", "no handler for " + method, {"method": method}])
        self.served.append([method, params, answer[1]])
        self.send(answer[0], answer[1])

    def reply(self, rid, timeout=5.0):
        self.pump(lambda: rid in self.replies, timeout)
        return self.replies.get(rid)

    def result(self, rid, timeout=5.0):
        """[kind, payload] of the reply to `rid`, or None."""
        got = self.reply(rid, timeout)
        return None if got is None else [got[0], got[1]]

    def reply_after_sentinel(self, rid):
        """The reply to `rid`, or None when a later call (inline on the server, answered in arrival order) was
        answered and `rid` was not: no timeout decides that there was no reply."""
        sentinel = self.call("add", [0, 0])
        self.pump(lambda: sentinel in self.replies)
        got = self.replies.get(rid)
        return None if got is None else [got[0], got[1]]

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass
        self.r.observed.setdefault("connections", {})[self.label] = {
            "tls": self.tls_version, "serverSeqs": self.server_seqs, "rejectedByPython": self.rejected,
            "nilErrors": self.nil_errors, "served": self.served}


def rejections(peer):
    """The server's own record of what it rejected on this connection (its `wire.rejections` handler)."""
    rid = peer.call("wire.rejections")
    got = peer.reply(rid)
    return None if got is None else got[1][1]


def codes_of(rej):
    return None if rej is None else [x["code"] for x in rej]


def scenario_main(args, r):
    t_start = now_ms()
    # ---- connection A: good traffic both ways, then security failures, then good traffic again ----------------
    a = LivePeer(args, r, "A")
    r.eq("A: TLS 1.3", a.tls_version, "TLSv1.3")
    rid = a.call("add", [2, 3])
    add_frame = a.sent_frames[-1]
    got = a.reply(rid)
    r.eq("A: add(2, 3) answered with RESPONSE [id, 5]", None if got is None else [got[0], got[1]], [KIND_RESPONSE, [rid, 5]])
    if got is not None:
        meta = got[2]
        r.eq("A: the server's reply: seq 1, kid k1, unbound, 30 s lifetime",
             [meta.seq, meta.kid, meta.flags, meta.expires_at - meta.issued_at], [1, args.kid, 0, 30000])
        r.check("A: the server's issuedAt is near this clock", abs(meta.issued_at - now_ms()) < 60000, None, meta.issued_at)
    value = {"s": "h\u00e9llo \u2713", "neg": -5, "big": 1700000000000, "f": 1.5, "b": b"\x00\x01\xfe\xff",
             "arr": [1, None, True, False, ""], "nested": {"a": {"b": [1, 2, {"c": -2 ** 31}]}}, "u32": 2 ** 32 - 1,
             "n53": 2 ** 53, "m53": -(2 ** 53)}
    rid = a.call("echo", value)
    got = a.result(rid)
    r.eq("A: echo of a msgpack-python encoded value (fixmap, uint64, bin, UTF-8) comes back equal",
         None if got is None else got[1][1], value)
    r.observed["echoTypes"] = None if got is None else {k: type(v).__name__ for k, v in got[1][1].items()}
    a.send(KIND_MESSAGE, {"t": "move", "x": 1.5, "y": -3.25})
    msg_seq = a.sender.seq
    a.pump(lambda: len(a.messages) >= 1)
    r.eq("A: a one-way MESSAGE (kind 16) is verified by the server, which answers with a kind-17 message",
         [[m.kind, v] for m, v in a.messages], [[17, {"echo": {"t": "move", "x": 1.5, "y": -3.25}, "seq": msg_seq}]])
    a.send(KIND_NOTIFY, ["py.hello", {"from": "python"}])
    a.pump(lambda: any(n[0] == "hello.back" for n in a.notifications))
    r.eq("A: a NOTIFY reaches the server's onNotify, which notifies back",
         [[n[0], n[1]] for n in a.notifications if n[0] == "hello.back"], [["hello.back", {"from": "python"}]])
    rid = a.call("subscribe", 3)
    got = a.result(rid)
    a.pump(lambda: len([n for n in a.notifications if n[0] == "tick"]) >= 3)
    r.eq("A: subscribe(3): RESPONSE and three server-pushed NOTIFY tick", [got, [n[1] for n in a.notifications if n[0] == "tick"]],
         [[KIND_RESPONSE, [rid, "subscribed"]], [{"n": 1}, {"n": 2}, {"n": 3}]])
    rid = a.call("callback", 6)
    got = a.result(rid)
    r.eq("A: the server calls py.mul on this peer mid-call, and returns its answer",
         [got, a.served[:1]], [[KIND_RESPONSE, [rid, 42]], [["py.mul", [6, 7], [1, 42]]]])
    rid = a.call("nope", None)
    got = a.result(rid)
    r.eq("A: unknown method: ERROR TW_METHOD_NOT_FOUND with data {method}",
         None if got is None else [got[0], got[1][0], got[1][1], got[1][3]],
         [KIND_ERROR, rid, "TW_METHOD_NOT_FOUND", {"method": "nope"}])
    rid = a.call("shop.charge", {"sku": "A-1"})
    got = a.result(rid)
    r.eq("A: application error: ERROR [id, SHOP_OUT_OF_STOCK, message, data]", got,
         [KIND_ERROR, [rid, "SHOP_OUT_OF_STOCK", "out of stock", {"sku": "A-1"}]])
    rid = a.call("admin.reset")
    got = a.result(rid)
    r.check("A: a role-protected method: ERROR TW_FORBIDDEN with data {role: admin}",
            got is not None and got[1][1] == "TW_FORBIDDEN" and got[1][3] == {"role": "admin"}, "TW_FORBIDDEN", got)
    rid = a.call("boom")
    r.eq("A: a handler's plain exception: TW_RPC 'internal error'", a.result(rid),
         [KIND_ERROR, [rid, "TW_RPC", "internal error", None]])
    rid = a.call("slow", 10)
    a.send(KIND_CANCEL, [rid])
    got = a.result(rid)
    r.check("A: CANCEL of a running call: ERROR TW_CANCELLED", got is not None and got[0] == KIND_ERROR and got[1][1] == "TW_CANCELLED",
            "TW_CANCELLED", got)

    # ---- bad frames on A: each a REQUEST that must get no reply ------------------------------------------------
    bad_ids = []
    now = now_ms()
    # tampered tag: its seq is not recorded (rejected at step 4), so the next good frame reuses it
    seq = a.sender.next_seq()
    a.next_id += 1
    bad_ids.append(a.next_id)
    f = bytearray(a.sender.frame(KIND_REQUEST, encode_python([a.next_id, "add", [1, 1]]), seq=seq))
    f[-1] ^= 0x01
    a.write(bytes(f))
    rid = a.call("add", [10, 1], seq=seq)
    r.eq("A: after a tampered tag with seq s, a good frame with the same seq s is accepted", a.result(rid),
         [KIND_RESPONSE, [rid, 11]])
    # expired: lifetime 20 s, expired 40 s ago
    a.next_id += 1
    bad_ids.append(a.next_id)
    a.write(a.sender.frame(KIND_REQUEST, encode_python([a.next_id, "add", [1, 2]]), issued_at=now - 60000,
                           expires_at=now - 40000))
    # issued in the future
    a.next_id += 1
    bad_ids.append(a.next_id)
    a.write(a.sender.frame(KIND_REQUEST, encode_python([a.next_id, "add", [1, 3]]), issued_at=now + 60000,
                           expires_at=now + 90000))
    # unknown key id (signed correctly with a key the server does not have)
    a.next_id += 1
    bad_ids.append(a.next_id)
    other = Sender(Keyring({"k9": b"\x99" * 32}), "client")
    a.write(other.frame(KIND_REQUEST, encode_python([a.next_id, "add", [1, 4]]), seq=a.sender.next_seq()))
    # replay of the very first frame (seq 1, same bytes)
    a.write(add_frame)
    # reflection: a frame the server sent, sent back to it
    a.write(struct.pack(">I", len(a.received_frames[0])) + a.received_frames[0])
    # sequence window: jump ahead by 200, then a never-used seq now below top-128 (too old), then one within the window
    base = a.sender.seq
    rid_ahead = a.call("add", [20, 1], seq=base + 200)
    a.next_id += 1
    bad_ids.append(a.next_id)
    a.write(a.sender.frame(KIND_REQUEST, encode_python([a.next_id, "add", [1, 5]]), seq=base + 1))
    rid_within = a.call("add", [20, 2], seq=base + 100)
    a.sender.seq = base + 200
    r.eq("A: seq top+200 accepted; a never-used seq 199 below it refused; 100 below it accepted",
         [a.result(rid_ahead), a.result(rid_within)], [[KIND_RESPONSE, [rid_ahead, 21]], [KIND_RESPONSE, [rid_within, 22]]])
    rej = rejections(a)
    r.eq("A: the server rejected, in order (wire.rejections)", codes_of(rej),
         ["TW_BAD_SIGNATURE", "TW_SIGNATURE_EXPIRED", "TW_BAD_TIME_SIGNATURE", "TW_UNKNOWN_KEY_ID",
          "TW_REPLAYED_MESSAGE", "TW_BAD_SIGNATURE", "TW_REPLAYED_MESSAGE"])
    late = rej[1].get("lateBy") if rej and len(rej) > 1 else None
    elapsed = (now_ms() - now) / 1000
    r.check("A: the expiry's lateBy = (now - expiresAt - skew) / 1000 = 35 s + the time since",
            isinstance(late, (int, float)) and 35 - 0.001 <= late <= 35 + elapsed + 0.001, [35, 35 + elapsed], late)
    # nonce reuse, not idempotent: answered TW_REPLAYED_MESSAGE, never run twice
    nonce = os.urandom(16)
    rid1 = a.call("counter.inc", "plain", nonce=nonce)
    rid2 = a.call("counter.inc", "plain", nonce=nonce)
    got1, got2 = a.result(rid1), a.result(rid2)
    r.check("A: a non-idempotent request reusing a nonce (fresh seq): the first runs, the copy gets TW_REPLAYED_MESSAGE",
            got1 == [KIND_RESPONSE, [rid1, 1]] and got2 is not None and got2[0] == KIND_ERROR and got2[1][1] == "TW_REPLAYED_MESSAGE",
            "[RESPONSE 1, ERROR TW_REPLAYED_MESSAGE]", [got1, got2])
    # idempotent retry: same nonce, new seq and id, expiresAt no later than the first attempt's
    inonce = os.urandom(16)
    first_issued = now_ms()
    first_expires = first_issued + 30000
    rid1 = a.call("counter.inc", "idem", {"idempotent": True}, nonce=inonce, issued_at=first_issued, expires_at=first_expires)
    got1 = a.result(rid1)
    rid2 = a.call("counter.inc", "idem", {"idempotent": True}, nonce=inonce, expires_at=first_expires)
    got2 = a.result(rid2)
    rid3 = a.call("counter.inc", "idem", {"idempotent": True})
    got3 = a.result(rid3)
    r.eq("A: an idempotent retry is answered from the first outcome (not run again); a new nonce runs",
         [got1, got2, got3], [[KIND_RESPONSE, [rid1, 1]], [KIND_RESPONSE, [rid2, 1]], [KIND_RESPONSE, [rid3, 2]]])
    r.observed["idempotent"] = {"nonce": inonce.hex(), "expiresAt": first_expires}
    # a one-way message reusing a nonce (the server has a nonce store)
    mnonce = os.urandom(16)
    a.send(KIND_MESSAGE, {"once": 1}, nonce=mnonce)
    a.send(KIND_MESSAGE, {"once": 2}, nonce=mnonce)
    rej2 = rejections(a)
    r.observed["A.rejectionsAfterNonces"] = codes_of(rej2)
    r.eq("A: with a nonce store every kind's nonce is reserved (§6 step 7): the reused-nonce REQUEST and MESSAGE "
         "each count as a TW_REPLAYED_MESSAGE rejection; the idempotent retry does not",
         (codes_of(rej2) or [])[7:], ["TW_REPLAYED_MESSAGE", "TW_REPLAYED_MESSAGE"])
    rid = a.call("add", [40, 2])
    r.eq("A: good traffic after the bad frames still works", a.result(rid), [KIND_RESPONSE, [rid, 42]])
    a.pump(lambda: False, 0.1)
    r.eq("A: no reply ever came for a rejected frame", [i for i in bad_ids if i in a.replies], [])
    r.eq("A: this side rejected nothing the server sent", a.rejected, [])
    r.eq("A: the server's messages were numbered 1, 2, 3, ... in arrival order", a.server_seqs,
         list(range(1, len(a.server_seqs) + 1)))
    a.close()

    # ---- connection B: header structure (§2), every failure TW_MALFORMED_ENVELOPE, no reply ----------------------
    b = LivePeer(args, r, "B")
    key = b.sender.key()
    now = now_ms()

    def req_payload(n):
        return encode_python([n, "add", [0, n]])

    cases = [
        ("version 2", dict(version=2)), ("kind 0", dict(kind=0)), ("reserved flag bit 1", dict(flags=0x02)),
        ("bound flag to an unbound server", dict(flags=0x01)), ("kidLen 0", dict(kid=b"", kid_len=0)),
        ("kidLen 33", dict(kid=b"k" * 33)), ("seq 0", dict(seq=0)), ("seq 2^53", dict(seq=2 ** 53)),
        ("issuedAt 2^53", dict(issued_at=2 ** 53, expires_at=2 ** 53)),
        ("expiresAt < issuedAt", dict(expires_at=now - 1)), ("lifetime 301 s > maxTtl", dict(expires_at=now + 301000)),
        ("77 bytes: 1-byte kid, no payload", dict(kid=b"k", payload=b"")),
        ("78 bytes: 2-byte kid, no payload", dict(payload=b"")),
        # §2 / §6 step 3: the receiver does not check the kid's characters; a kid not in its keyring, whatever its
        # bytes, is TW_UNKNOWN_KEY_ID
        ("kid with a space", dict(kid=b"k 1")), ("kid with a non-ASCII byte", dict(kid=b"k\xff")),
    ]
    for i, (label, kw) in enumerate(cases):
        params = dict(key=key, kind=KIND_REQUEST, kid=args.kid.encode(), seq=b.sender.next_seq(), issued_at=now,
                      expires_at=now + 30000, nonce=os.urandom(16), payload=req_payload(1001 + i))
        params.update(kw)
        b.write(raw_envelope(**params))
    rej = rejections(b)
    labels = [c_[0] for c_ in cases]
    by_label = dict(zip(labels, rej or []))
    r.observed["B.rejections"] = by_label
    r.eq("B: each malformed header is TW_MALFORMED_ENVELOPE",
         [by_label.get(l, {}).get("code") for l in labels[:13]], ["TW_MALFORMED_ENVELOPE"] * 13)
    r.eq("B: a kid outside the §2 alphabet is not in the keyring: TW_UNKNOWN_KEY_ID (§6 step 3)",
         [by_label.get(l, {}).get("code") for l in labels[13:]], ["TW_UNKNOWN_KEY_ID"] * 2)
    rid = b.call("add", [1, 1])
    r.eq("B: the connection keeps serving (15 rejections, one below maxRejections)", b.result(rid),
         [KIND_RESPONSE, [rid, 2]])
    r.eq("B: no reply to any malformed envelope", sorted(i for i in b.replies if i > 1000), [])
    b.close()

    # ---- connection C: payloads (§5) and RPC shapes ----------------------------------------------------------
    c = LivePeer(args, r, "C")
    bad = [
        ("REQUEST 241 with a timestamp ext", KIND_REQUEST, b"\x93\xcc\xf1\xa3add\xd6\xff\x00\x00\x00\x01"),
        ("REQUEST 242 with a trailing byte", KIND_REQUEST, b"\x93\xcc\xf2\xa3add\x92\x01\x02\xc0"),
        ("REQUEST 243 with NaN", KIND_REQUEST, b"\x93\xcc\xf3\xa3add\x92\x01\xcb" + struct.pack(">d", float("nan"))),
        ("MESSAGE with key __proto__", KIND_MESSAGE, encode_python({"__proto__": {"admin": True}})),
        ("REQUEST 245 with uint64 2^53+1", KIND_REQUEST, b"\x93\xcc\xf5\xa4echo\xcf" + u64(2 ** 53 + 1)),
        ("MESSAGE with key constructor", KIND_MESSAGE, encode_python({"a": [{"constructor": 1}]})),
    ]
    for _, kind, payload in bad:
        c.write(c.sender.frame(kind, payload))
    rej = rejections(c)
    r.observed["C.rejections"] = rej
    r.eq("C: undecodable / refused payloads are TW_BAD_PAYLOAD", codes_of(rej), ["TW_BAD_PAYLOAD"] * 6)
    r.observed["C.protoMessage"] = rej[3]["message"] if rej and len(rej) > 3 else None
    # keys that only look like the forbidden ones (§5 forbids exactly __proto__ and constructor)
    look_alike = {}
    for label, value in [("__proto_", {"__proto_": 1}), ("__proto__x", {"__proto__x": 2}),
                         ("constructors", {"constructors": 3}), ("_proto__", {"_proto__": 4})]:
        before = len(rejections(c) or [])
        c.send(KIND_MESSAGE, value)
        after = rejections(c) or []
        look_alike[label] = after[before]["code"] if len(after) > before else "accepted"
    r.observed["C.lookAlikeKeys"] = look_alike
    r.eq("C: keys that only look like __proto__ / constructor are accepted (§5: exactly those two are refused)",
         look_alike, {"__proto_": "accepted", "__proto__x": "accepted", "constructors": "accepted", "_proto__": "accepted"})
    n_before_shapes = len(rejections(c) or [])
    r.observed["C.repliesToUndecodableRequests"] = sorted(i for i in c.replies if i in (241, 242, 243, 245))
    r.observed["C.nilErrorsAfterUndecodableRequests"] = len(c.nil_errors)
    r.eq("C: a REQUEST refused by the §5 payload check is never answered (RPC: a message refused by §6)",
         [r.observed["C.repliesToUndecodableRequests"], len(c.nil_errors)], [[], 0])
    # RPC shapes: readable id answered [id, TW_BAD_PAYLOAD, ...]; unreadable id answered with a nil id
    c.send(KIND_REQUEST, [211, 123, None])
    c.send(KIND_REQUEST, [212, "add", [1, 2], "not a map"])
    c.send(KIND_REQUEST, [213, "x" * 257, None])
    before_nil = len(c.nil_errors)
    c.send(KIND_REQUEST, {"not": "an array"})
    c.pump(lambda: all(i in c.replies for i in (211, 212, 213)) and len(c.nil_errors) > before_nil)
    r.eq("C: a REQUEST of the wrong shape with a readable id: ERROR [id, TW_BAD_PAYLOAD, message, nil]",
         [[c.replies[i][1][0], c.replies[i][1][1], c.replies[i][1][3]] if i in c.replies else None for i in (211, 212, 213)],
         [[211, "TW_BAD_PAYLOAD", None], [212, "TW_BAD_PAYLOAD", None], [213, "TW_BAD_PAYLOAD", None]])
    r.eq("C: a REQUEST whose id cannot be read: ERROR with a nil id, TW_BAD_PAYLOAD",
         [e[0] for e in c.nil_errors[before_nil:]], ["TW_BAD_PAYLOAD"])
    rej = rejections(c)
    r.eq("C: the malformed RPC messages count as rejections (TW_BAD_PAYLOAD)", codes_of((rej or [])[n_before_shapes:]),
         ["TW_BAD_PAYLOAD"] * 4)
    rid = c.call("add", [2, 2])
    r.eq("C: the connection keeps serving", c.result(rid), [KIND_RESPONSE, [rid, 4]])
    c.close()

    # ---- connection C2: where the server draws the limits the document states, and seq recording ---------------
    c = LivePeer(args, r, "C2")
    c.next_id = 300

    def nils(total):
        # [id, "len", [nil * n]]: 4 values (outer array, id, method, inner array) + n nils
        n = total - 4
        return b"\xdd" + struct.pack(">I", n) + b"\xc0" * n

    def str_map(entries):
        # [id, "len", {k0: nil, ...}]
        return b"\xdf" + struct.pack(">I", entries) + b"".join(encode_python("k%d" % i) + b"\xc0" for i in range(entries))

    probes = {}
    for label, params in [("32 levels", b"\x91" * 30 + b"\x90"), ("33 levels", b"\x91" * 31 + b"\x90"),
                          ("100,000 values", nils(100000)), ("100,001 values", nils(100001)),
                          ("a map of 49,999 entries (100,002 values if keys count)", str_map(49999)),
                          ("a map of 99,996 entries (100,000 values if keys do not count)", str_map(99996)),
                          ("a map of 99,997 entries (100,001 values if keys do not count)", str_map(99997)),
                          ("int 2^53-1", b"\xcf" + u64(2 ** 53 - 1)), ("int 2^53", b"\xcf" + u64(2 ** 53)),
                          ("int -2^53", b"\xd3" + struct.pack(">q", -(2 ** 53))),
                          ("int 2^53+1", b"\xcf" + u64(2 ** 53 + 1))]:
        # the REQUEST array is the first level; params add the rest
        c.next_id += 1
        rid = c.next_id
        c.write(c.sender.frame(KIND_REQUEST, b"\x93" + encode_python(rid) + b"\xa3len" + params))
        got = c.reply_after_sentinel(rid)
        probes[label] = "answered" if got is not None and got[0] == KIND_RESPONSE else (got[1][1] if got else "no reply")
    r.observed["C2.limitProbes"] = probes
    r.eq("C2: the limits of §5 (outermost container = level 1; containers and scalars count, map keys do not; "
         "uint64/int64 accepted up to |n| = 2^53)", probes, {
             "32 levels": "answered", "33 levels": "no reply", "100,000 values": "answered", "100,001 values": "no reply",
             "a map of 49,999 entries (100,002 values if keys count)": "answered",
             "a map of 99,996 entries (100,000 values if keys do not count)": "answered",
             "a map of 99,997 entries (100,001 values if keys do not count)": "no reply",
             "int 2^53-1": "answered", "int 2^53": "answered", "int -2^53": "answered", "int 2^53+1": "no reply"})
    # §6 step 6 records a fresh seq before step 8 runs: is the seq of a message refused for its payload burnt?
    s = c.sender.next_seq()
    c.next_id += 1
    c.write(c.sender.frame(KIND_REQUEST, b"\x93" + encode_python(c.next_id) + b"\xa3add\xd4\x01\x00", seq=s))
    rid = c.call("add", [3, 3], seq=s)
    r.observed["C2.seqOfBadPayloadReused"] = "answered" if c.reply_after_sentinel(rid) is not None else "no reply"
    r.eq("C2: a frame refused for its payload has used up its seq (§6 step 6): the same seq again gets no reply",
         r.observed["C2.seqOfBadPayloadReused"], "no reply")
    r.observed["C2.rejections"] = codes_of(rejections(c))
    rid = c.call("add", [2, 2])
    r.eq("C2: the connection keeps serving", c.result(rid), [KIND_RESPONSE, [rid, 4]])
    c.close()

    # ---- connection D: an idempotent retry on a new connection (shared nonce store) ---------------------------
    d = LivePeer(args, r, "D")
    idem = r.observed["idempotent"]
    rid = d.call("counter.inc", "idem", {"idempotent": True}, nonce=bytes.fromhex(idem["nonce"]),
                 expires_at=idem["expiresAt"])
    r.eq("D: the idempotent retry on a new connection is answered with the first outcome", d.result(rid),
         [KIND_RESPONSE, [rid, 1]])
    # maxRejections (default 16): 15 bad frames and the connection still serves; the 16th closes it
    for _ in range(15):
        f = bytearray(d.sender.frame(KIND_MESSAGE, encode_python("bad")))
        f[-1] ^= 0x80
        d.write(bytes(f))
    rid = d.call("add", [7, 8])
    r.eq("D: after 15 rejections the connection still serves", d.result(rid), [KIND_RESPONSE, [rid, 15]])
    f = bytearray(d.sender.frame(KIND_MESSAGE, encode_python("bad")))
    f[-1] ^= 0x80
    d.write(bytes(f))
    r.check("D: the 16th rejection (maxRejections) closes the connection", d.wait_closed(), "closed", "open")
    d.close()

    # ---- connection E: a frame length over maxFrameSize (1 MiB) closes the connection at once -------------------
    e = LivePeer(args, r, "E")
    # exactly 1 MiB is allowed: [id, "len", bin] padded to a 1,048,576-byte body
    e.next_id += 1
    rid = e.next_id
    head = b"\x93" + encode_python(rid) + b"\xa3len" + b"\xc6"
    fixed = 44 + len(args.kid) + len(head) + 4 + TAG_SIZE
    blob = b"\xab" * (DEFAULT_MAX_FRAME - fixed)
    frame = e.sender.frame(KIND_REQUEST, head + struct.pack(">I", len(blob)) + blob)
    e.write(frame)
    r.eq("E: a frame of exactly maxFrameSize (1,048,576) is accepted",
         [struct.unpack(">I", frame[:4])[0], e.result(rid)], [DEFAULT_MAX_FRAME, [KIND_RESPONSE, [rid, len(blob)]]])
    e.sock.sendall(struct.pack(">I", DEFAULT_MAX_FRAME + 1))   # the 4 length bytes alone, no body
    r.check("E: a length of maxFrameSize + 1 closes the connection from the 4 bytes alone", e.wait_closed(), "closed", "open")
    e.close()

    # ---- connection F: the server still serves new connections ------------------------------------------------
    f_ = LivePeer(args, r, "F")
    rid = f_.call("add", [1000, 1])
    r.eq("F: after all that, a new connection is served", f_.result(rid), [KIND_RESPONSE, [rid, 1001]])
    f_.close()
    r.observed["elapsedMs"] = now_ms() - t_start


def scenario_bound(args, r):
    """Against a server at its default (bindToTls 'auto', so bound): this unbound peer's frames are refused with
    TW_MALFORMED_ENVELOPE, and it refuses the server's bound frames the same way (§4.2: a mismatch is reported
    clearly, not as a bad signature)."""
    p = LivePeer(args, r, "bound")
    p.send(KIND_MESSAGE, {"from": "python", "unbound": True})
    p.pump(lambda: len(p.rejected) >= 1)
    r.eq("bound: the server's first frame (flags bit 0 set) is refused here as TW_MALFORMED_ENVELOPE",
         [x["code"] for x in p.rejected[:1]], ["TW_MALFORMED_ENVELOPE"])
    first = p.received_frames[0] if p.received_frames else b""
    r.eq("bound: its flags byte has bit 0 set", first[2:3].hex(), "01")
    p.close()


def run_client(args):
    r = Report()
    try:
        {"main": scenario_main, "bound": scenario_bound}[args.scenario](args, r)
    except (OSError, ssl.SSLError) as e:
        r.check("connection", False, "connected", repr(e))
    return r


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    v = sub.add_parser("vectors")
    v.add_argument("--doc", required=True)
    c = sub.add_parser("client")
    c.add_argument("--host", default="127.0.0.1")
    c.add_argument("--port", type=int, required=True)
    c.add_argument("--ca", required=True)
    c.add_argument("--cert", required=True)
    c.add_argument("--key", required=True)
    c.add_argument("--secret-hex", required=True)
    c.add_argument("--kid", default="k1")
    c.add_argument("--scenario", default="main", choices=["main", "bound"])
    try:
        args = ap.parse_args(argv)
    except SystemExit:
        print(json.dumps({"error": {"code": "PEER_USAGE", "message": "bad arguments"}}))
        return 2
    r = run_vectors(args.doc) if args.cmd == "vectors" else run_client(args)
    print(json.dumps(r.dump()))
    return 0 if r.ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
