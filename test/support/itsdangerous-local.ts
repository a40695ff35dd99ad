/**
 * This side of the itsdangerous interop and differential tests: the tulipwire signer or serializer a
 * {@link PySpec} names (the same spec the Python helper builds its object from), and a load that reports the
 * outcome in the Python helper's {@link PyResult} shape.
 */
import { VirtualClock } from '../../src/loop/clock.js';
import {
  Serializer, Signer, TimedSerializer, TimestampSigner, URLSafeSerializer, URLSafeTimedSerializer,
} from '../../src/tokens/index.js';
import type { SignerOptions } from '../../src/tokens/index.js';
import type { PyResult, PySpec } from './itsdangerous-py.js';

/** The tulipwire object `spec` describes, on a virtual clock at epoch second `now`. */
export function buildLocal(spec: PySpec, now: number) {
  const clock = new VirtualClock({ epochStart: now });
  const signerOptions: SignerOptions = {};
  if (spec.digest) signerOptions.digest = spec.digest;
  if (spec.keyDerivation) signerOptions.keyDerivation = spec.keyDerivation;
  if (spec.sep) signerOptions.sep = spec.sep;
  const keys = spec.keys.length > 1 ? spec.keys : spec.keys[0]!;
  const salt = 'salt' in spec ? { salt: spec.salt } : {};
  switch (spec.cls) {
    case 'Signer': return new Signer(keys, { ...signerOptions, ...salt });
    case 'TimestampSigner': return new TimestampSigner(keys, { ...signerOptions, ...salt, clock });
    case 'Serializer': return new Serializer(keys, { signerOptions, ...salt, clock });
    case 'TimedSerializer': return new TimedSerializer(keys, { signerOptions, ...salt, clock });
    case 'URLSafeSerializer': return new URLSafeSerializer(keys, { signerOptions, ...salt, clock });
    case 'URLSafeTimedSerializer': return new URLSafeTimedSerializer(keys, { signerOptions, ...salt, clock });
  }
}

/** Unsigns or loads `token` here at epoch second `now`: the value (and timestamp for timed classes), or the error. */
export function loadLocal(spec: PySpec, token: string, now: number, maxAge?: number | null): PyResult {
  const obj = buildLocal(spec, now);
  try {
    if (obj instanceof TimestampSigner) {
      const [value, ts] = obj.unsign(token, { maxAge, returnTimestamp: true });
      return { value, ts };
    }
    if (obj instanceof Signer) return { value: obj.unsign(token) };
    if (obj instanceof TimedSerializer) {
      const [value, ts] = obj.loads(token, { maxAge, returnTimestamp: true });
      return { value, ts };
    }
    return { value: obj.loads(token) };
  } catch (err) {
    const e = err as { name: string; message: string; dateSigned?: number | null };
    return { err: e.name, msg: e.message, dateSigned: e.dateSigned ?? null };
  }
}
