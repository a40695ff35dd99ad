/**
 * A batch driver for Debian's python3-itsdangerous: builds signers/serializers from JSON specs, makes and loads
 * tokens at a given time, and reports values or error class names. One Python process per batch.
 */
import { runPython } from './py.js';

/** What to build on the Python side. */
export interface PySpec {
  cls: 'Signer' | 'TimestampSigner' | 'Serializer' | 'TimedSerializer' | 'URLSafeSerializer' | 'URLSafeTimedSerializer';
  /** Secret keys, oldest → newest (a single key when one). */
  keys: string[];
  /** Salt; omitted: the class default; null: None. */
  salt?: string | null;
  digest?: 'sha1' | 'sha256' | 'sha512';
  keyDerivation?: 'django-concat' | 'concat' | 'hmac' | 'none';
  sep?: string;
}

/** One operation. */
export type PyOp =
  | { op: 'make'; spec: PySpec; value: unknown; now: number }
  | { op: 'load'; spec: PySpec; token: string; now: number; maxAge?: number | null; returnTimestamp?: boolean };

/** The result of one operation: a token, a loaded value (+ timestamp), or an error class name and message. */
export interface PyResult {
  token?: string;
  value?: unknown;
  ts?: number | null;
  err?: string;
  msg?: string;
  dateSigned?: number | null;
}

const DRIVER = String.raw`
import sys, json, time, hashlib
import itsdangerous as i
NOW = [0]
time.time = lambda: NOW[0]
def build(spec):
    cls = getattr(i, spec["cls"])
    keys = spec["keys"] if len(spec["keys"]) > 1 else spec["keys"][0]
    kw = {}
    if "digest" in spec: kw["digest_method"] = getattr(hashlib, spec["digest"])
    if "keyDerivation" in spec: kw["key_derivation"] = spec["keyDerivation"]
    if "sep" in spec: kw["sep"] = spec["sep"]
    if spec["cls"].endswith("Signer"):
        if "salt" in spec: kw["salt"] = spec["salt"]
        return cls(keys, **kw)
    args = {"signer_kwargs": kw}
    if "salt" in spec: args["salt"] = spec["salt"]
    return cls(keys, **args)
out = []
for op in json.load(sys.stdin):
    NOW[0] = op["now"]
    obj = build(op["spec"])
    is_signer = op["spec"]["cls"].endswith("Signer")
    timed = "Timed" in op["spec"]["cls"] or op["spec"]["cls"] == "TimestampSigner"
    try:
        if op["op"] == "make":
            t = obj.sign(op["value"]) if is_signer else obj.dumps(op["value"])
            out.append({"token": t.decode() if isinstance(t, bytes) else t})
        else:
            kw = {}
            if timed:
                kw["max_age"] = op.get("maxAge")
                kw["return_timestamp"] = True
            r = obj.unsign(op["token"], **kw) if is_signer else obj.loads(op["token"], **kw)
            if timed:
                v, ts = r
                out.append({"value": v.decode() if isinstance(v, bytes) else v, "ts": int(ts.timestamp())})
            else:
                out.append({"value": r.decode() if isinstance(r, bytes) else r})
    except i.BadData as e:
        ds = getattr(e, "date_signed", None)
        out.append({"err": type(e).__name__, "msg": str(e), "dateSigned": int(ds.timestamp()) if ds else None})
print(json.dumps(out))
`;

/** Runs the operations in one Python process; results come back in order. */
export async function itsdangerousBatch(ops: readonly PyOp[]): Promise<PyResult[]> {
  const { stdout } = await runPython(DRIVER, [], JSON.stringify(ops));
  return JSON.parse(stdout) as PyResult[];
}
