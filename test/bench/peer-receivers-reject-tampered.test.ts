/**
 * Every peer receiver of bench/signed.ts must verify each message before it counts it, and report a bad one as
 * `rejected` (with `firstReject`) instead of dying or silently dropping the connection: the suite fails a row whose
 * receiver rejected anything (bench/support/compare.ts `runFaults`). Here each receiver gets, in one write over a
 * real mTLS connection, good frames mixed with a tampered one, an expired one and a malformed one (a valid tag over
 * a body that is not `[exp, nonce, message]`), and must report exactly those three as rejected.
 */
import { createHmac } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { newClient } from '../../bench/peers/grpc.js';
import { connectOne } from '../../bench/raw.js';
import { gameMessage, makeCerts, removeCerts } from '../../bench/support/common.js';
import { epochNow, NoncePool, PEER_KEY, signFrame } from '../../bench/support/peer-format.js';
import { type Impl, Worker } from '../../bench/support/workers.js';

const certs = makeCerts();
afterAll(() => removeCerts(certs));

function frameOf(body: Buffer): Buffer {
  const f = Buffer.alloc(4 + body.length);
  f.writeUInt32BE(body.length, 0);
  body.copy(f, 4);
  return f;
}

function stream(): Buffer {
  const nonces = new NoncePool();
  const exp = epochNow() + 3600;
  const good = (i: number): Buffer => signFrame(gameMessage(0, i), exp, nonces.take());
  const tampered = good(100);
  tampered[tampered.length - 40] ^= 1; // a bit of the packed body, under the tag
  const expired = signFrame(gameMessage(0, 101), epochNow() - 60, nonces.take());
  const packed = Buffer.from([0x05]); // msgpack 5: validly signed, but not [exp, nonce, message]
  const malformed = frameOf(Buffer.concat([packed, createHmac('sha256', PEER_KEY).update(packed).digest()]));
  return Buffer.concat([good(1), good(2), tampered, good(3), expired, good(4), malformed, good(5)]);
}

/** The same bodies as {@link stream}, without the length prefixes (what grpc-js messages carry). */
function bodies(): Buffer[] {
  const s = stream();
  const out: Buffer[] = [];
  for (let i = 0; i < s.length; ) {
    const n = s.readUInt32BE(i);
    out.push(s.subarray(i + 4, i + 4 + n));
    i += 4 + n;
  }
  return out;
}

async function rejectedBy(impl: Impl): Promise<Record<string, unknown>> {
  const recv = new Worker(impl, ['--role', 'recv', '--certs', certs.dir, '--conns', '1', '--pad', '0', '--warmup', '0', '--duration', '0.5'], `${impl} receiver`);
  try {
    const listening = await recv.waitEvent('listening', 30);
    const port = Number(listening['port']);
    if (impl === 'grpc') {
      const client = newClient(certs.dir, port);
      const call = client.stream();
      call.on('error', () => {});
      for (const b of bodies()) call.write(b);
      const r = await recv.waitEvent('result', 30);
      client.close();
      return r;
    }
    const sock = await connectOne(certs.dir, port);
    sock.on('error', () => {});
    sock.write(stream());
    const r = await recv.waitEvent('result', 30);
    sock.destroy();
    return r;
  } finally {
    await recv.stop();
  }
}

describe('peer receivers reject bad messages and say so', () => {
  for (const impl of ['asyncio', 'uvloop', 'naive', 'grpc'] as Impl[]) {
    it(`${impl}: a tampered, an expired and a malformed message are counted as rejected, not as received`, async () => {
      const r = await rejectedBy(impl);
      expect(r['rejected']).toBe(3);
      expect(String(r['firstReject'])).toMatch(/signature/);
      expect(Number(r['msgs'])).toBeLessThanOrEqual(5);
      // grpc-js does not expose the negotiated cipher of a call.
      if (impl !== 'grpc') expect(String(r['tls'])).toMatch(/^TLSv1\.3 TLS_/);
    }, 60_000);
  }
});
