/**
 * JSON text exactly as Python's `json.dumps` writes it, for the types JSON and JavaScript share, so a token signed
 * here has the very bytes Python would sign (itsdangerous's `_json.py` and the stdlib `json` module).
 *
 * Supported: `null`, booleans, finite numbers (a safe integer is written as a Python `int`, any other number as
 * Python's `float.__repr__`: `0.1`, `1e-05`, `1e+16`), `bigint` (as an `int`), well-formed strings, arrays and plain
 * objects (keys in JavaScript's own order, which puts integer-like keys first). Everything else (`undefined`,
 * functions, symbols, `NaN`/`Infinity`, Dates, Maps, typed arrays, class instances, cycles, lone surrogates) is a
 * `TypeError`, as Python's encoder refuses what it cannot represent.
 */
import { randomBytes } from 'node:crypto';

/** How a {@link pythonJsonDumps} call formats its text. */
export interface PythonJsonOptions {
  /** Python's `separators`: compact `[',', ':']` (the URL-safe serializers) or the stdlib default `[', ', ': ']`. */
  separators: readonly [string, string];
  /** Python's `ensure_ascii`: escape every character outside `' '..'~'` as `\uXXXX` (the stdlib default, true). */
  ensureAscii: boolean;
}

/** `json.dumps(obj, separators=(",", ":"), ensure_ascii=False)`: what `URLSafeSerializer` signs. */
export const COMPACT_JSON: PythonJsonOptions = Object.freeze({ separators: [',', ':'] as const, ensureAscii: false });
/** `json.dumps(obj)` with the stdlib defaults: what the plain `Serializer` signs. */
export const STDLIB_JSON: PythonJsonOptions = Object.freeze({ separators: [', ', ': '] as const, ensureAscii: true });

const SHORT_ESCAPES: Record<string, string> = {
  '"': '\\"', '\\': '\\\\', '\b': '\\b', '\f': '\\f', '\n': '\\n', '\r': '\\r', '\t': '\\t',
};

function hex4(code: number): string {
  return '\\u' + code.toString(16).padStart(4, '0');
}

/** Python's `py_encode_basestring(_ascii)`: quotes and escapes one string. */
export function pythonJsonString(s: string, ensureAscii: boolean): string {
  let out = '"';
  let start = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    let esc: string | undefined;
    if (c >= 0xd800 && c <= 0xdfff) {
      const isPair = c <= 0xdbff && i + 1 < s.length && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00;
      if (!isPair) throw new TypeError('cannot encode a string with a lone surrogate (not valid UTF-8)');
      if (ensureAscii) {
        esc = hex4(c) + hex4(s.charCodeAt(i + 1));
        out += s.slice(start, i) + esc;
        i++;
        start = i + 1;
      } else {
        i++;
      }
      continue;
    }
    if (c === 0x22 || c === 0x5c) esc = SHORT_ESCAPES[s[i]!];
    else if (c < 0x20) esc = SHORT_ESCAPES[s[i]!] ?? hex4(c);
    else if (ensureAscii && c > 0x7e) esc = hex4(c);
    if (esc !== undefined) {
      out += s.slice(start, i) + esc;
      start = i + 1;
    }
  }
  return out + s.slice(start) + '"';
}

/** Python's `float.__repr__` of a finite number (shortest round-trip digits, as JavaScript's). */
export function pythonFloatRepr(x: number): string {
  const abs = Math.abs(x);
  // Python writes fixed notation for 1e-4 <= |x| < 1e16 and exponent notation otherwise; JavaScript switches at
  // 1e-7 and 1e21, with the same shortest digits. In fixed notation Python always shows a fraction ("2.0").
  if (abs >= 1e-4 && abs < 1e16) {
    const text = String(x);
    return Number.isInteger(x) ? (Object.is(x, -0) ? '-0.0' : text + '.0') : text;
  }
  if (x === 0) return Object.is(x, -0) ? '-0.0' : '0.0';
  const [mantissa, exp] = x.toExponential().split('e') as [string, string];
  const sign = exp[0] === '-' ? '-' : '+';
  const digits = exp.replace(/^[+-]/, '');
  return `${mantissa}e${sign}${digits.padStart(2, '0')}`;
}

function isPlainObject(v: object): boolean {
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

/**
 * Serializes `value` to the exact text Python's `json.dumps(value, separators=…, ensure_ascii=…)` gives.
 * @throws TypeError for values outside the supported types, and for cycles ("Circular reference detected")
 */
export function pythonJsonDumps(value: unknown, options: PythonJsonOptions = COMPACT_JSON): string {
  const [itemSep, keySep] = options.separators;
  const ascii = options.ensureAscii;
  const seen = new Set<object>();
  const enc = (v: unknown): string => {
    switch (typeof v) {
      case 'string':
        return pythonJsonString(v, ascii);
      case 'number':
        if (!Number.isFinite(v)) throw new TypeError(`cannot encode ${v} (Python would write non-standard JSON)`);
        // A safe integer is what a Python int would be; past 2^53 a double is only a float (use bigint for exact ints).
        if (Number.isSafeInteger(v)) return String(v === 0 ? 0 : v);
        return pythonFloatRepr(v);
      case 'bigint':
        return v.toString();
      case 'boolean':
        return v ? 'true' : 'false';
      case 'object': {
        if (v === null) return 'null';
        if (seen.has(v)) throw new TypeError('Circular reference detected');
        seen.add(v);
        let text: string;
        if (Array.isArray(v)) {
          text = '[' + v.map((item) => enc(item)).join(itemSep) + ']';
        } else if (isPlainObject(v)) {
          const parts: string[] = [];
          for (const key of Object.keys(v)) {
            parts.push(pythonJsonString(key, ascii) + keySep + enc((v as Record<string, unknown>)[key]));
          }
          text = '{' + parts.join(itemSep) + '}';
        } else {
          throw new TypeError(`Object of type ${v.constructor?.name ?? 'unknown'} is not JSON serializable`);
        }
        seen.delete(v);
        return text;
      }
      default:
        throw new TypeError(`Object of type ${typeof v} is not JSON serializable`);
    }
  };
  return enc(value);
}

// ignoreBOM keeps a leading U+FEFF in the text, so JSON.parse refuses it as Python does ("Unexpected UTF-8 BOM"):
// itsdangerous decodes the payload with `.decode("utf-8")`, which keeps the BOM, before `json.loads`. By default a
// TextDecoder silently strips it, and a validly signed payload Python refuses loaded here.
const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * Parses JSON bytes or text as Python's `json.loads` would for standard JSON (bytes must be valid UTF-8; a leading
 * byte-order mark is refused, as itsdangerous refuses it). An integer literal beyond ±(2^53 − 1) loads as a
 * `bigint` with its exact value, as Python reads it as an exact `int` (and as {@link pythonJsonDumps} writes a
 * `bigint`): `JSON.parse` alone would round it to another integer silently, so a Python-signed id 1234567890123456789
 * would have come out as 1234567890123456768. Every other number is a `number`, as `JSON.parse` gives it. Python
 * also accepts `NaN`/`Infinity`, which JavaScript's parser refuses; such payloads fail here.
 * @throws SyntaxError or TypeError on invalid input (the serializers wrap it in BadPayload)
 */
export function pythonJsonLoads(payload: string | Uint8Array): unknown {
  const text = typeof payload === 'string' ? payload : strictUtf8.decode(payload);
  // 16 digits in a row are needed for an integer beyond 2^53 − 1 (9007199254740991, 16 digits): without any, the
  // plain parse is exact, and the scan below costs nothing.
  if (!/\d{16}/.test(text)) return JSON.parse(text);
  const spans = unsafeIntegers(text);
  if (spans.length === 0) return JSON.parse(text);
  // Each such literal becomes a string holding a marker no payload can contain (random per call), which the reviver
  // turns into a bigint. A string is valid where a number is, and also as an object key, where a number is not: a
  // marker found as a key was a number there, which JSON refuses.
  const marker = `\u0000tulipwire-bigint-${randomBytes(8).toString('hex')}:`;
  let rewritten = '';
  let at = 0;
  for (const [start, end] of spans) {
    rewritten += `${text.slice(at, start)}${JSON.stringify(marker + text.slice(start, end))}`;
    at = end;
  }
  rewritten += text.slice(at);
  return JSON.parse(rewritten, (key, value: unknown) => {
    if (key.startsWith(marker)) throw new SyntaxError(`a number cannot be an object key in JSON (${key.slice(marker.length)})`);
    return typeof value === 'string' && value.startsWith(marker) ? BigInt(value.slice(marker.length)) : value;
  });
}

// JSON's number grammar at one position (sticky): integer part without leading zeros, optional fraction and exponent.
const NUMBER_AT = /-?(?:0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/y;
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

// The [start, end) spans of the integer literals (no fraction, no exponent) outside strings whose value is beyond
// ±(2^53 − 1). Text that is not JSON may give any spans: the parse of the rewritten text refuses it all the same.
function unsafeIntegers(text: string): [number, number][] {
  const spans: [number, number][] = [];
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22) {
      // Skip the string, escapes included.
      for (i++; i < text.length && text.charCodeAt(i) !== 0x22; i++) if (text.charCodeAt(i) === 0x5c) i++;
      continue;
    }
    if (c !== 0x2d && (c < 0x30 || c > 0x39)) continue;
    NUMBER_AT.lastIndex = i;
    const m = NUMBER_AT.exec(text);
    if (m === null) continue;
    const end = i + m[0].length;
    if (m[1] === undefined && m[2] === undefined && m[0].replace('-', '').length >= 16) {
      const v = BigInt(m[0]);
      if (v > MAX_SAFE || -v > MAX_SAFE) spans.push([i, end]);
    }
    i = end - 1;
  }
  return spans;
}
