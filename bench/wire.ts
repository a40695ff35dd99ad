/**
 * bench/wire.ts: the wire layer in process, per message, against the naive Node pipeline measured in the same run.
 *
 * - seal+frame: encode the message (straight into the batch buffer), header + nonce + HMAC, length prefix, batched as
 *   one buffer per 256 messages (what MessageProtocol does per loop iteration), with the native MAC addon, with the
 *   JS MAC, and the naive
 *   way: `randomBytes(16)` + msgpackr `pack([expiresAt, nonce, message])` + `createHmac` + `Buffer.concat` per message.
 * - open+decode: the same bytes cut into 64 KiB chunks (what a TLS socket hands over), deframed, MAC-verified,
 *   expiry- and replay-checked, decoded and shape-checked; naive: `Buffer.concat` deframing per chunk, `createHmac` +
 *   `timingSafeEqual`, `unpack`, expiry check per message.
 * - MAC alone: HMAC-SHA256 of 85-byte messages in batches of 256: native, JS, `createHmac`.
 *
 * Sizes: the ~100 B game message `{t:'move',id:42,x:1.5,y:-3.25,seq:123456,ts:1700000000000}`, and 1 KiB / 16 KiB
 * (the same message with a `pad` byte string). Every figure is printed with its ratio to the naive baseline of the same
 * run (the machines are noisy; only same-run ratios count). `npx tsx bench/wire.ts [--json] [--quick] [--duration s]`.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { Packr, Unpackr } from 'msgpackr';
import { systemClock } from '../src/loop/clock.js';
import { Keyring } from '../src/wire/keyring.js';
import { KeySchedule, Opener, Sealer } from '../src/wire/signing.js';
import { FrameDecoder } from '../src/wire/frames.js';
import { decode, encode } from '../src/wire/codec.js';
import { jsMac } from '../src/wire/mac-js.js';
import { nodeMac, TAG_SIZE } from '../src/wire/mac.js';
import type { MacEngine } from '../src/wire/mac.js';
import { nativeMac, nativeMacAccelerated, nativeMacUnavailableReason, setNativeMacAccel } from '../src/wire/mac-native.js';
import { GAME, SIZES, emitReport, gameMessage, isMain, now, parseFlags, progress } from './support/common.js';
import type { BenchCase, BenchReport } from './support/common.js';

const BATCH = 256;
const CHUNK = 64 * 1024;
const SECRET = Buffer.alloc(32, 0x42);

/** Runs `step` (which processes `perStep` messages) for `seconds`; returns messages per second. */
function rate(step: () => void, perStep: number, seconds: number): number {
  // warm-up
  const w0 = now();
  while (now() - w0 < seconds / 4) step();
  let n = 0;
  const t0 = now();
  let t = t0;
  while (t - t0 < seconds) {
    for (let i = 0; i < 8; i++) step();
    n += 8 * perStep;
    t = now();
  }
  return n / (t - t0);
}

/** Median of `reps` interleaved runs of each named step. */
function compare(steps: Record<string, [() => void, number]>, seconds: number, reps: number): Record<string, number> {
  const samples: Record<string, number[]> = {};
  for (let r = 0; r < reps; r++) {
    for (const [name, [fn, per]] of Object.entries(steps)) (samples[name] ??= []).push(rate(fn, per, seconds));
  }
  const out: Record<string, number> = {};
  for (const [name, xs] of Object.entries(samples)) {
    xs.sort((a, b) => a - b);
    out[name] = xs[Math.floor(xs.length / 2)]!;
  }
  return out;
}

function engines(): MacEngine[] {
  return nativeMac !== null ? [nativeMac, jsMac] : [jsMac];
}

function ring(): Keyring {
  const k = new Keyring();
  k.add('k1', SECRET);
  return k;
}

function sealer(engine: MacEngine): Sealer {
  return new Sealer({ schedule: new KeySchedule({ keyring: ring(), side: 'client', engine }), engine, clock: systemClock });
}

function opener(engine: MacEngine): Opener {
  return new Opener({ schedule: new KeySchedule({ keyring: ring(), side: 'server', engine }), engine, clock: systemClock, skew: 5, maxTtl: 3600 });
}

/** Cuts `stream` into chunks of `CHUNK` bytes, as socket reads would. */
function chunks(stream: Buffer): Buffer[] {
  const out: Buffer[] = [];
  for (let o = 0; o < stream.length; o += CHUNK) out.push(Buffer.from(stream.subarray(o, Math.min(stream.length, o + CHUNK))));
  return out;
}

// ---- the naive pipeline (a straightforward Node implementation, as bench/peers/naive.ts)

const naivePackr = new Packr({ useRecords: false, moreTypes: false, structuredClone: false, bundleStrings: false, encodeUndefinedAsNil: true });
const naiveUnpackr = new Unpackr({ useRecords: false, mapsAsObjects: true, structuredClone: false, copyBuffers: true });

function naiveSeal(msg: unknown): Buffer {
  const nonce = randomBytes(16);
  const body = naivePackr.pack([Date.now() + 3_600_000, nonce, msg]);
  const tag = createHmac('sha256', SECRET).update(body).digest();
  const len = Buffer.allocUnsafe(4);
  len.writeUInt32BE(body.length + TAG_SIZE);
  return Buffer.concat([len, body, tag]);
}

function naiveOpener(onMessage: (m: unknown) => void): (chunk: Buffer) => void {
  let buf: Buffer = Buffer.alloc(0);
  return (chunk) => {
    buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
    let off = 0;
    while (buf.length - off >= 4) {
      const len = buf.readUInt32BE(off);
      if (buf.length - off - 4 < len) break;
      const body = buf.subarray(off + 4, off + 4 + len - TAG_SIZE);
      const tag = buf.subarray(off + 4 + len - TAG_SIZE, off + 4 + len);
      off += 4 + len;
      if (!timingSafeEqual(createHmac('sha256', SECRET).update(body).digest(), tag)) throw new Error('bad tag');
      const [exp, , msg] = naiveUnpackr.unpack(body) as [number, Buffer, unknown];
      if (exp < Date.now()) throw new Error('expired');
      onMessage(msg);
    }
    buf = buf.subarray(off);
  };
}

// ---- cases

function sealCases(label: string, pad: number, seconds: number, reps: number): BenchCase[] {
  const msg = gameMessage(pad);
  const steps: Record<string, [() => void, number]> = {};
  let sink: Buffer | null = null;
  for (const engine of engines()) {
    const s = sealer(engine);
    steps[engine.name] = [() => {
      for (let i = 0; i < BATCH; i++) {
        msg['seq'] = i;
        s.appendValue(msg, 16, 30); // what MessageProtocol.sendMessage does
      }
      s.flush((b) => { sink = b; });
    }, BATCH];
  }
  steps['naive'] = [() => {
    const frames: Buffer[] = [];
    for (let i = 0; i < BATCH; i++) {
      msg['seq'] = i;
      frames.push(naiveSeal(msg));
    }
    sink = Buffer.concat(frames);
  }, BATCH];
  const r = compare(steps, seconds, reps);
  void sink;
  return caseRows(`seal+frame ${label}`, r);
}

function openCases(label: string, pad: number, seconds: number, reps: number): BenchCase[] {
  const msg = gameMessage(pad);
  const frameSize = 200 + pad;
  const count = Math.max(BATCH, Math.floor((8 * 1024 * 1024) / frameSize));
  const steps: Record<string, [() => void, number]> = {};
  let got = 0;
  for (const engine of engines()) {
    const s = sealer(engine);
    const parts: Buffer[] = [];
    for (let i = 0; i < count; i++) {
      msg['seq'] = i;
      s.append(encode(msg), 16, 3000);
      if (i % BATCH === BATCH - 1) s.flush((b) => parts.push(Buffer.from(b)));
    }
    s.flush((b) => parts.push(Buffer.from(b)));
    const cs = chunks(Buffer.concat(parts));
    steps[engine.name] = [() => {
      // A fresh connection per pass over the stream: its sequence window starts over.
      const o = opener(engine);
      const dec = new FrameDecoder();
      const add = (b: Buffer, st: number, e: number) => o.add(b, st, e);
      const accept = (_m: unknown, b: Buffer, st: number, e: number) => { decode(b, undefined, st, e); got++; };
      const reject = (err: Error) => { throw err; };
      for (const c of cs) {
        dec.feedRanges(c, add);
        o.run(accept, reject);
      }
    }, count];
  }
  {
    const parts: Buffer[] = [];
    for (let i = 0; i < count; i++) {
      msg['seq'] = i;
      parts.push(naiveSeal(msg));
    }
    const cs = chunks(Buffer.concat(parts));
    steps['naive'] = [() => {
      const feed = naiveOpener(() => { got++; });
      for (const c of cs) feed(c);
    }, count];
  }
  const r = compare(steps, seconds, reps);
  return caseRows(`open+decode ${label}`, r);
}

function macCases(seconds: number, reps: number): BenchCase[] {
  const n = BATCH;
  const len = 85;
  const buf = Buffer.alloc(n * (len + TAG_SIZE), 1);
  const starts = new Uint32Array(n);
  const ends = new Uint32Array(n);
  for (let i = 0; i < n; i++) {
    starts[i] = i * (len + TAG_SIZE);
    ends[i] = starts[i]! + len;
  }
  const steps: Record<string, [() => void, number]> = {};
  for (const engine of [...engines(), nodeMac]) {
    const k = engine.prepareKey(SECRET);
    steps[engine.name === 'node' ? 'naive' : engine.name] = [() => engine.signBatch(k, buf, starts, ends, 0, n), n];
  }
  if (nativeMac !== null && nativeMacAccelerated) {
    // The native engine with its SHA-extension path off: OpenSSL's SHA256_Update/Final per message.
    const engine = nativeMac;
    const k = engine.prepareKey(SECRET);
    steps['native-openssl'] = [() => {
      setNativeMacAccel(false);
      engine.signBatch(k, buf, starts, ends, 0, n);
      setNativeMacAccel(true);
    }, n];
  }
  const r = compare(steps, seconds, reps);
  const rows = caseRows('HMAC-SHA256 85 B', r);
  if (r['native-openssl'] !== undefined && r['native'] !== undefined) {
    rows.push({ case: 'HMAC-SHA256 85 B native, OpenSSL path (SHA extensions off)', unit: 'msg/s', value: Math.round(r['native-openssl']),
      baseline: { name: 'naive createHmac', value: Math.round(r['naive']!) }, ratio: Math.round((r['native-openssl'] / r['naive']!) * 100) / 100,
      extra: { nsPerMsg: Math.round(1e9 / r['native-openssl']) } });
    rows.push({ case: 'HMAC-SHA256 85 B native, SHA extensions vs OpenSSL path', unit: 'x', value: Math.round((r['native'] / r['native-openssl']) * 100) / 100 });
  }
  return rows;
}

function caseRows(what: string, r: Record<string, number>): BenchCase[] {
  const base = r['naive']!;
  const rows: BenchCase[] = [];
  for (const name of ['native', 'js']) {
    if (r[name] === undefined) continue;
    rows.push({ case: `${what} ${name}`, unit: 'msg/s', value: Math.round(r[name]!), baseline: { name: 'naive createHmac', value: Math.round(base) },
      ratio: Math.round((r[name]! / base) * 100) / 100, extra: { nsPerMsg: Math.round(1e9 / r[name]!) } });
  }
  rows.push({ case: `${what} naive createHmac`, unit: 'msg/s', value: Math.round(base), extra: { nsPerMsg: Math.round(1e9 / base) } });
  if (r['native'] !== undefined && r['js'] !== undefined) {
    rows.push({ case: `${what} native vs js`, unit: 'x', value: Math.round((r['native'] / r['js']) * 100) / 100 });
  }
  return rows;
}

/** Runs the wire bench and returns its report. */
export function runWireBench(argv: readonly string[] = process.argv.slice(2)): BenchReport {
  const flags = parseFlags(argv);
  const seconds = flags.duration ?? (flags.quick ? 0.02 : 0.3);
  const reps = flags.quick ? 1 : 3;
  const cases: BenchCase[] = [];
  progress('wire: MAC engines');
  cases.push(...macCases(seconds, reps));
  for (const [label, pad] of Object.entries(SIZES)) {
    if (flags.only !== null && !label.includes(flags.only) && !'seal open HMAC'.includes(flags.only)) continue;
    progress(`wire: seal ${label}`);
    cases.push(...sealCases(label, pad, seconds, reps));
    progress(`wire: open ${label}`);
    cases.push(...openCases(label, pad, seconds, reps));
  }
  if (nativeMac === null) cases.push({ case: 'native MAC addon', unit: 'x', value: null, extra: { error: nativeMacUnavailableReason } });
  void GAME;
  return { name: 'wire', cases };
}

if (isMain(import.meta.url)) {
  emitReport(runWireBench(), parseFlags());
}
