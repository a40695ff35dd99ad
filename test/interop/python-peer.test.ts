/**
 * Interop with an independent implementation of docs/wire-format.md: test/interop/wire_peer.py, a Python peer
 * written from the document alone (Debian's `command -p python3` with python3-msgpack, nothing else).
 *
 * 1. The Python peer checks every wire-vector, wire-reject and rpc-vector block of the document (parsed from it,
 *    as test/wire/vectors.test.ts does) and self-tests each verification step.
 * 2. It connects over mutual TLS (certificates from the project's own CA) to a real tulipwire RpcProtocol server on
 *    127.0.0.1, unbound (Python's ssl module has no TLS exporter, so the §4.2 binding cannot be computed there):
 *    signed calls and one-way messages both ways, server-pushed notifications, a server→Python call, error
 *    replies, cancellation, idempotent retries, then deliberately bad frames (tampered MAC, expired, from the
 *    future, unknown key id, replayed, reflected, too old for the window, every malformed header, refused payloads
 *    and RPC shapes, maxRejections, a frame over maxFrameSize). Both sides' records are asserted: the exact codes
 *    the server rejected with, what the Python side verified, and that good traffic keeps working afterwards.
 * 3. Against a server at its default (TLS-bound) setting, the unbound Python peer and the server each refuse the
 *    other's frames with TW_MALFORMED_ENVELOPE (the binding mismatch of §2/§4.2).
 *
 * Behaviour the document states in detail because this peer found it missing or wrong (kid alphabet, forbidden
 * keys, size limits, integer bounds, unanswered refused requests, seq and nonce accounting) is asserted below with a
 * comment naming the section, so a change on either side shows up here.
 *
 * If Debian's python3 or its msgpack module is missing, every test fails with a message saying so (never skips).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { useLoop } from '../support/loop.js';
import { makeTestCA } from '../support/ca.js';
import type { TestCA } from '../support/ca.js';
import { Keyring, MemoryNonceStore, RpcError, RpcProtocol, sleep } from '../../src/index.js';
import type {
  MessageMeta, NonceStore, PeerIdentity, RejectionError, RpcProtocolOptions, Server, Transport,
} from '../../src/index.js';

const fx = useLoop({ real: true });
const PEER = fileURLToPath(new URL('./wire_peer.py', import.meta.url));
const DOC = fileURLToPath(new URL('../../docs/wire-format.md', import.meta.url));
/** The shared message secret (32 random bytes), given to the Python peer as hex. */
const SECRET = randomBytes(32);
const KID = 'k1';
/** Each Python run is killed after this long; each test's own bound is below vitest's 20 s. */
const PEER_TIMEOUT_MS = 15_000;

let ca: TestCA;
let pemDir: string;
let certArgs: string[];
let pythonProblem: string | null = null;

/** What wire_peer.py prints. */
interface PeerCheck { name: string; ok: boolean; expected?: unknown; got?: unknown }
interface PeerReport {
  ok: boolean;
  count: number;
  failures: PeerCheck[];
  checks: PeerCheck[];
  observed: Record<string, unknown>;
  error?: { code: string; message: string };
}

/** Runs wire_peer.py with Debian's interpreter (as test/support/py.ts finds it) and parses its JSON report. */
function runPeer(args: readonly string[]): Promise<{ report: PeerReport; exitCode: number | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('sh', ['-c', 'P=$(command -p -v python3) && exec "$P" "$0" "$@"', PEER, ...args], {
      env: { ...process.env, PYTHONIOENCODING: 'utf-8', PYTHONDONTWRITEBYTECODE: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString('utf8'); });
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString('utf8'); });
    const timer = setTimeout(() => child.kill('SIGKILL'), PEER_TIMEOUT_MS);
    child.on('error', (err) => { clearTimeout(timer); reject(err); });
    child.on('close', (exitCode, signal) => {
      clearTimeout(timer);
      try {
        resolve({ report: JSON.parse(stdout) as PeerReport, exitCode, stderr });
      } catch {
        reject(new Error(`wire_peer.py ${args[0]} printed no report (exit ${exitCode}, signal ${signal}):\n${stdout}\n${stderr}`));
      }
    });
  });
}

/** Null when `command -p python3` can import msgpack, else what is wrong (the tests then fail with it). */
function checkPython(): Promise<string | null> {
  return new Promise((resolve) => {
    execFile('sh', ['-c', 'P=$(command -p -v python3) || exit 127; exec "$P" -c "import msgpack"'], { timeout: 10_000 },
      (err, _stdout, stderr) => {
        if (err === null) resolve(null);
        else if ((err as { code?: unknown }).code === 127) resolve('Debian\'s python3 (`command -p python3`) was not found');
        else {
          resolve('Debian\'s python3 cannot import msgpack: install python3-msgpack (`apt-get install python3-msgpack`; '
            + `.ci/test.sh installs it when missing). ${stderr.trim()}`);
        }
      });
  });
}

function requirePython(): void {
  if (pythonProblem !== null) throw new Error(`python interop test cannot run: ${pythonProblem}`);
}

beforeAll(async () => {
  pythonProblem = await checkPython();
  ca = await makeTestCA();
  const client = await ca.issueClient('python-peer');
  pemDir = await mkdtemp(join(tmpdir(), 'tulipwire-pypeer-'));
  await writeFile(join(pemDir, 'ca.pem'), client.issued.ca.pem);
  await writeFile(join(pemDir, 'chain.pem'), client.issued.chain.pem);
  await writeFile(join(pemDir, 'key.pem'), client.issued.key.pem, { mode: 0o600 });
  certArgs = ['--ca', join(pemDir, 'ca.pem'), '--cert', join(pemDir, 'chain.pem'), '--key', join(pemDir, 'key.pem'),
    '--secret-hex', SECRET.toString('hex'), '--kid', KID];
}, 60_000);

afterAll(async () => {
  await ca?.cleanup();
  if (pemDir !== undefined) await rm(pemDir, { recursive: true, force: true });
});

/** One connection's server side: an RpcProtocol with the handlers wire_peer.py calls, recording what it saw. */
class ServerPeer extends RpcProtocol {
  readonly rejected: RejectionError[] = [];
  readonly others: { kind: number; seq: number; value: unknown }[] = [];
  readonly hellos: unknown[] = [];
  readonly calledBack: unknown[] = [];
  lost: Error | null | undefined = undefined;
  readonly #greet: boolean;

  /** `counters` are shared by the server's connections (idempotent retries land on another one); `greet` sends a message on connect. */
  constructor(options: RpcProtocolOptions, counters: Map<string, number>, greet: boolean) {
    super(options);
    this.#greet = greet;
    this.handle('add', ([a, b]: [number, number]) => a + b);
    this.handle('echo', (x: unknown) => x);
    this.handle('len', (x: unknown) => (x instanceof Uint8Array ? x.byteLength : Array.isArray(x) ? x.length : 0));
    this.handle('counter.inc', (name: string) => {
      const n = (counters.get(name) ?? 0) + 1;
      counters.set(name, n);
      return n;
    });
    this.handle('subscribe', (n: number, ctx) => {
      for (let i = 1; i <= n; i++) ctx.endpoint.notify('tick', { n: i });
      return 'subscribed';
    });
    this.handle('callback', async (x: number, ctx) => {
      const product = await ctx.endpoint.call<number>('py.mul', [x, 7]);
      this.calledBack.push(product);
      return product;
    });
    this.handle('slow', async (seconds: number) => sleep(seconds, 'late'));
    this.handle('shop.charge', (p: { sku: string }) => {
      throw new RpcError('out of stock', { remoteCode: 'SHOP_OUT_OF_STOCK', data: { sku: p.sku } });
    });
    this.handle('boom', () => { throw new Error('secret detail'); });
    this.handle('admin.reset', () => 'reset', { roles: 'admin' });
    this.handle('wire.rejections', () => this.rejected.map((e) => ({
      code: e.code, message: e.message, lateBy: (e as { lateBy?: number }).lateBy ?? null,
    })));
    this.onNotify('py.hello', (p: unknown, ctx) => {
      this.hellos.push(p);
      ctx.endpoint.notify('hello.back', p);
    });
  }

  override connectionMade(transport: Transport): void {
    super.connectionMade(transport);
    if (this.#greet) this.sendMessage({ hello: 'from a TLS-bound server' });
  }

  override messageRejected(error: RejectionError): void {
    this.rejected.push(error);
  }

  override otherMessageReceived(message: unknown, meta: MessageMeta): void {
    this.others.push({ kind: meta.kind, seq: meta.seq, value: message });
    this.sendMessage({ echo: message, seq: meta.seq }, { kind: 17 });
  }

  override connectionLost(exc: Error | null): void {
    this.lost = exc;
    super.connectionLost(exc);
  }
}

interface Served {
  port: number;
  protocols: ServerPeer[];
  counters: Map<string, number>;
  warnings: string[];
  server: Server;
}

async function serve(options: { bindToTls?: boolean | 'auto'; nonceStore?: NonceStore; greet?: boolean } = {}): Promise<Served> {
  const keyring = new Keyring();
  keyring.add(KID, SECRET);
  const protocols: ServerPeer[] = [];
  const counters = new Map<string, number>();
  const warnings: string[] = [];
  const server = await fx.loop.createServer(() => {
    const p = new ServerPeer({
      keyring, side: 'server', logger: { warn: (m) => warnings.push(m) },
      ...(options.bindToTls !== undefined ? { bindToTls: options.bindToTls } : {}),
      ...(options.nonceStore !== undefined ? { nonceStore: options.nonceStore } : {}),
    }, counters, options.greet ?? false);
    protocols.push(p);
    return p;
  }, '127.0.0.1', 0, { ssl: ca.serverOptions });
  const port = (server.sockets[0] as { address(): { port: number } }).address().port;
  return { port, protocols, counters, warnings, server };
}

async function stop(s: Served): Promise<void> {
  s.server.close();
  s.server.abortClients();
  await s.server.waitClosed();
}

const codes = (p: ServerPeer) => p.rejected.map((e) => e.code);

/** Polls on the loop (at most 5 s) until `pred` holds; the assertion after it fails if it never does. */
async function until(pred: () => boolean): Promise<void> {
  const end = fx.loop.time() + 5;
  while (!pred() && fx.loop.time() < end) await sleep(0.005);
  expect(pred()).toBe(true);
}

/** The fenced blocks of the document, counted as test/wire/vectors.test.ts finds them. */
function countBlocks(tag: string): number {
  return [...readFileSync(DOC, 'utf8').matchAll(new RegExp('```' + tag + '\\n([\\s\\S]*?)```', 'g'))].length;
}

describe('an independent Python implementation of docs/wire-format.md', () => {
  it('checks every vector of the document (wire-vector, wire-reject, rpc-vector)', async () => {
    requirePython();
    const { report, exitCode, stderr } = await runPeer(['vectors', '--doc', DOC]);
    expect(report.error, stderr).toBeUndefined();
    expect(report.failures).toEqual([]);
    expect(report.observed.blocks).toEqual({
      'wire-vector': countBlocks('wire-vector'), 'wire-reject': countBlocks('wire-reject'), 'rpc-vector': countBlocks('rpc-vector'),
    });
    expect(countBlocks('wire-vector')).toBeGreaterThanOrEqual(6);
    expect(countBlocks('wire-reject')).toBeGreaterThanOrEqual(8);
    expect(countBlocks('rpc-vector')).toBeGreaterThanOrEqual(7);
    expect(report.count).toBeGreaterThan(100);
    expect(exitCode).toBe(0);
  }, 20_000);

  it('talks signed RPC and messages with a tulipwire server over mTLS, and every bad frame gets its documented code', async () => {
    requirePython();
    await fx.run(async () => {
      const nonceStore = new MemoryNonceStore();
      const s = await serve({ bindToTls: false, nonceStore });
      try {
        const { report, exitCode, stderr } = await runPeer(['client', '--host', '127.0.0.1', '--port', String(s.port),
          '--scenario', 'main', ...certArgs]);
        expect(report.error, stderr).toBeUndefined();
        expect(report.failures).toEqual([]);
        expect(exitCode).toBe(0);
        // the server closed D and E before Python saw their ends; wait (bounded) until it has processed every close
        await until(() => s.protocols.length === 7 && s.protocols.every((p) => p.lost !== undefined));

        // one server protocol per Python connection: A, B, C, C2, D, E, F
        expect(s.protocols).toHaveLength(7);
        const [a, b, c, c2, d, e, f] = s.protocols as [ServerPeer, ServerPeer, ServerPeer, ServerPeer, ServerPeer, ServerPeer, ServerPeer];
        for (const p of s.protocols) {
          expect(p.tlsBound).toBe(false);
          expect((p.peer as PeerIdentity).identity).toMatch(/\/client\/python-peer$/);
        }

        // A: good traffic both ways, verified on the server ...
        expect(a.others.map((m) => m.kind)).toEqual([16, 16]);
        expect(a.hellos).toEqual([{ from: 'python' }]);
        expect(a.calledBack).toEqual([42]);          // the server verified Python's signed RESPONSE to py.mul
        expect(s.counters.get('plain')).toBe(1);     // a reused nonce never runs a request twice
        expect(s.counters.get('idem')).toBe(2);      // two distinct idempotent operations, three attempts + a retry on D
        // ... and each bad frame refused with its code, in order
        expect(codes(a).slice(0, 7)).toEqual(['TW_BAD_SIGNATURE', 'TW_SIGNATURE_EXPIRED', 'TW_BAD_TIME_SIGNATURE',
          'TW_UNKNOWN_KEY_ID', 'TW_REPLAYED_MESSAGE', 'TW_BAD_SIGNATURE', 'TW_REPLAYED_MESSAGE']);
        expect((a.rejected[1] as { lateBy?: number }).lateBy).toBeGreaterThanOrEqual(35 - 0.001);

        // B: every malformed header is TW_MALFORMED_ENVELOPE (the two kids outside the §2 alphabet: TW_UNKNOWN_KEY_ID, below)
        expect(codes(b)).toHaveLength(15);
        expect(codes(b).slice(0, 13)).toEqual(Array(13).fill('TW_MALFORMED_ENVELOPE'));
        // C: refused payloads (6) and RPC shapes (4); the look-alike keys, __proto_ included, are accepted
        expect(codes(c)).toEqual(Array(10).fill('TW_BAD_PAYLOAD'));

        // D: the 16th rejection (maxRejections default) closes the connection, with the reason logged
        expect(codes(d)).toEqual(Array(16).fill('TW_BAD_SIGNATURE'));
        // E: a frame length over maxFrameSize is fatal (both closes logged with their reason)
        expect(s.warnings).toEqual([
          'closing the connection after 16 rejected messages; last: TW_BAD_SIGNATURE message signature does not match for kid k1, seq 18',
          'closing the connection: TW_FRAME_TOO_LARGE frame of 1048577 bytes exceeds maxFrameSize 1048576',
        ]);
        // F: still served
        expect(f.rejected).toEqual([]);

        // the handler's plain exception went to the loop's exception handler, not to the peer
        expect(fx.take().map((r) => [r.message, String(r.exception)])).toEqual([['RPC handler boom failed', 'Error: secret detail']]);

        // What docs/wire-format.md now states in detail, as tulipwire does it (the Python peer checks the same from
        // its side; each is also in the interop report):
        const o = report.observed;
        // §2 / §6 step 3: the receiver does not check a kid's characters; one not in its keyring is TW_UNKNOWN_KEY_ID
        expect(codes(b).slice(13)).toEqual(['TW_UNKNOWN_KEY_ID', 'TW_UNKNOWN_KEY_ID']);
        // §5: exactly the keys __proto__ and constructor are refused, and the message names the key sent; __proto_
        // (which msgpackr's output also shows for __proto__) is an ordinary key, delivered as an own property
        expect(o['C.lookAlikeKeys']).toEqual({ __proto_: 'accepted', __proto__x: 'accepted', constructors: 'accepted', _proto__: 'accepted' });
        expect(o['C.protoMessage']).toBe('payload holds the forbidden key "__proto__"');
        expect(c.others.map((m) => m.value)).toEqual([{ __proto_: 1 }, { __proto__x: 2 }, { constructors: 3 }, { _proto__: 4 }]);
        const proto = c.others[0]!.value as Record<string, unknown>;
        expect(Object.getPrototypeOf(proto)).toBe(Object.prototype);
        expect(Object.getOwnPropertyNames(proto)).toEqual(['__proto_']);
        expect(({} as Record<string, unknown>).admin).toBeUndefined();
        // RPC: a REQUEST refused by the §5 payload check (a §6 refusal) gets no reply at all, not even a nil-id ERROR
        expect(o['C.repliesToUndecodableRequests']).toEqual([]);
        expect(o['C.nilErrorsAfterUndecodableRequests']).toBe(0);
        // §5 limits: the outermost container is level 1; every value counts (containers too), map keys do not;
        // uint64/int64 with |n| <= 2^53 are accepted and come back as float64
        expect(o['C2.limitProbes']).toEqual({
          '32 levels': 'answered', '33 levels': 'no reply', '100,000 values': 'answered', '100,001 values': 'no reply',
          'a map of 49,999 entries (100,002 values if keys count)': 'answered',
          'a map of 99,996 entries (100,000 values if keys do not count)': 'answered',
          'a map of 99,997 entries (100,001 values if keys do not count)': 'no reply',
          'int 2^53-1': 'answered', 'int 2^53': 'answered', 'int -2^53': 'answered', 'int 2^53+1': 'no reply',
        });
        expect((o.echoTypes as Record<string, string>).n53).toBe('float');
        // §6 step 6 records the seq before step 8: a frame refused for its payload uses up its seq
        expect(o['C2.seqOfBadPayloadReused']).toBe('no reply');
        expect(codes(c2)).toEqual([...Array(5).fill('TW_BAD_PAYLOAD'), 'TW_REPLAYED_MESSAGE']);
        // §6 step 7: with a nonce store every kind's nonce is reserved, so a one-way MESSAGE reusing a nonce is
        // refused like a non-idempotent request (which is also answered TW_REPLAYED_MESSAGE); both count as
        // rejections, the idempotent retry answered from the cache does not
        expect(codes(a).slice(7)).toEqual(['TW_REPLAYED_MESSAGE', 'TW_REPLAYED_MESSAGE']);
        expect(a.others.map((m) => m.value)).toEqual([{ t: 'move', x: 1.5, y: -3.25 }, { once: 1 }]);
        // a length over maxFrameSize reaches messageRejected as TW_FRAME_TOO_LARGE, then the connection closes
        expect(codes(e)).toEqual(['TW_FRAME_TOO_LARGE']);
      } finally {
        await stop(s);
        await nonceStore.close();
      }
    });
  }, 20_000);

  it('against a TLS-bound server, both sides refuse the other\'s frames as TW_MALFORMED_ENVELOPE (binding mismatch)', async () => {
    requirePython();
    await fx.run(async () => {
      const s = await serve({ greet: true });   // bindToTls: 'auto', the default: bound on TLS
      try {
        const { report, exitCode, stderr } = await runPeer(['client', '--host', '127.0.0.1', '--port', String(s.port),
          '--scenario', 'bound', ...certArgs]);
        expect(report.error, stderr).toBeUndefined();
        expect(report.failures).toEqual([]);
        expect(exitCode).toBe(0);
        await until(() => s.protocols[0]?.rejected.length === 1);
        const p = s.protocols[0]!;
        expect(p.tlsBound).toBe(true);
        expect(codes(p)).toEqual(['TW_MALFORMED_ENVELOPE']);
        expect(p.rejected[0]!.message).toMatch(/bind/);
        expect(p.others).toEqual([]);
      } finally {
        await stop(s);
      }
    });
  }, 20_000);
});
