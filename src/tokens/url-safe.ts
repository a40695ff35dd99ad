/**
 * itsdangerous's `url_safe.py`: serializers whose tokens use only `A-Za-z0-9-_.`.
 *
 * Payload: compact JSON (`json.dumps(obj, separators=(",", ":"), ensure_ascii=False)`, UTF-8), zlib-compressed
 * when that saves at least two bytes (`len(z) < len(json) - 1`), then unpadded base64url, with a leading `.` when
 * compressed. Tokens: `[.]payload SEP signature` and, timed, `[.]payload SEP ts SEP signature`.
 *
 * Node's zlib may not emit the same deflate bytes as the zlib Python links against, so a *compressed* token made
 * here can differ from Python's for the same value; both verify and load on either side.
 */
import { deflateSync, inflateSync } from 'node:zlib';
import { BadPayload } from '../errors.js';
import { TOKEN_MAX_PAYLOAD } from '../constants.js';
import { base64Decode } from './encoding.js';
import { COMPACT_JSON, pythonJsonDumps, pythonJsonLoads } from './json.js';
import { Serializer } from './serializer.js';
import type { PayloadSerializer, SerializerOptions } from './serializer.js';
import { TimedSerializer } from './timed.js';
import type { SecretKeys } from './signer.js';

/** itsdangerous's `_CompactJSON`: the payload serializer of the URL-safe classes. */
export const compactJson: PayloadSerializer = Object.freeze({
  dumps: (value: unknown) => pythonJsonDumps(value, COMPACT_JSON),
  loads: (payload: Buffer) => pythonJsonLoads(payload),
});

/** Options of the URL-safe serializers. */
export interface URLSafeSerializerOptions extends SerializerOptions {
  /** Largest decompressed payload accepted, bytes (a zlib bomb inside a validly signed token). Default {@link TOKEN_MAX_PAYLOAD}. */
  maxPayloadSize?: number;
}

/** Compresses (when it helps) and base64-encodes serialized JSON: `URLSafeSerializerMixin.dump_payload`. */
export function urlSafeDumpPayload(json: Buffer): Buffer {
  const compressed = deflateSync(json);
  const useCompressed = compressed.length < json.length - 1;
  const b64 = (useCompressed ? compressed : json).toString('base64url');
  return Buffer.from(useCompressed ? '.' + b64 : b64, 'latin1');
}

/**
 * Undoes {@link urlSafeDumpPayload} on a verified payload: `URLSafeSerializerMixin.load_payload`.
 * @throws BadPayload when the base64 or zlib data is bad, or the decompressed size exceeds `maxSize`
 */
export function urlSafeLoadPayload(payload: Buffer, maxSize: number): Buffer {
  let data = payload;
  const decompress = data.length > 0 && data[0] === 0x2e;
  if (decompress) data = data.subarray(1);
  let json: Buffer;
  try {
    json = base64Decode(data);
  } catch (err) {
    throw new BadPayload('Could not base64 decode the payload because of an exception', { cause: err });
  }
  if (decompress) {
    try {
      json = inflateSync(json, { maxOutputLength: maxSize });
    } catch (err) {
      throw new BadPayload('Could not zlib decompress the payload before decoding the payload', { cause: err });
    }
  }
  if (json.length > maxSize) throw new BadPayload(`payload of ${json.length} bytes exceeds maxPayloadSize ${maxSize}`);
  return json;
}

function checkMax(size: number): number {
  if (!Number.isInteger(size) || size < 1) throw new RangeError(`maxPayloadSize must be a positive integer, got ${size}`);
  return size;
}

/** A {@link Serializer} with URL-safe tokens (itsdangerous's `URLSafeSerializer`). */
export class URLSafeSerializer extends Serializer {
  /** The payload serializer used when none is given: compact JSON. */
  static override readonly defaultSerializer: PayloadSerializer = compactJson;
  /** Largest decompressed payload accepted, bytes. */
  readonly maxPayloadSize: number;

  constructor(secretKey: SecretKeys, options: URLSafeSerializerOptions = {}) {
    super(secretKey, options);
    this.maxPayloadSize = checkMax(options.maxPayloadSize ?? TOKEN_MAX_PAYLOAD);
  }

  /** Compact JSON, zlib when it helps, base64url. */
  override dumpPayload(value: unknown): Buffer {
    return urlSafeDumpPayload(super.dumpPayload(value));
  }

  /** base64url, zlib if marked, then JSON. @throws BadPayload */
  override loadPayload(payload: Buffer): unknown {
    return super.loadPayload(urlSafeLoadPayload(payload, this.maxPayloadSize));
  }
}

/** A {@link TimedSerializer} with URL-safe tokens (itsdangerous's `URLSafeTimedSerializer`). */
export class URLSafeTimedSerializer extends TimedSerializer {
  /** The payload serializer used when none is given: compact JSON. */
  static override readonly defaultSerializer: PayloadSerializer = compactJson;
  /** Largest decompressed payload accepted, bytes. */
  readonly maxPayloadSize: number;

  constructor(secretKey: SecretKeys, options: URLSafeSerializerOptions = {}) {
    super(secretKey, options);
    this.maxPayloadSize = checkMax(options.maxPayloadSize ?? TOKEN_MAX_PAYLOAD);
  }

  /** Compact JSON, zlib when it helps, base64url. */
  override dumpPayload(value: unknown): Buffer {
    return urlSafeDumpPayload(super.dumpPayload(value));
  }

  /** base64url, zlib if marked, then JSON. @throws BadPayload */
  override loadPayload(payload: Buffer): unknown {
    return super.loadPayload(urlSafeLoadPayload(payload, this.maxPayloadSize));
  }
}
