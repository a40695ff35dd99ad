/**
 * The `@grpc/grpc-js` peer: a bidi stream of pre-signed bytes messages over mTLS (the server verifies each one's
 * HMAC and expiry and unpacks it), and a unary signed echo for round trips. Messages are the peer bodies of
 * bench/support/peer-format.ts, passed through gRPC as raw bytes (identity serializers, no protobuf work).
 *
 * `npx tsx bench/peers/grpc.ts [--json] [--quick]` runs the gRPC cases beside the raw `node:tls` baseline;
 * with `--role recv|send|echo-server|ping` it is one side of a case (bench/support/workers.ts).
 */
import * as grpc from '@grpc/grpc-js';
import { argValue, cpuMicros, errorText, gameMessage, isMain, loadCerts, now, parseFlags, summarise } from '../support/common.js';
import { compareRun } from '../support/compare.js';
import { epochNow, NoncePool, PEER_TTL, signBody, verifyBody } from '../support/peer-format.js';
import { emitEvent, exitWithParent } from '../support/workers.js';

const ident = (b: Buffer): Buffer => b;

/** The service: `Stream` (client → server bytes, nothing back) and `Echo` (unary). */
const SERVICE = {
  stream: { path: '/tulipwire.bench.Bench/Stream', requestStream: true, responseStream: true,
    requestSerialize: ident, requestDeserialize: ident, responseSerialize: ident, responseDeserialize: ident },
  echo: { path: '/tulipwire.bench.Bench/Echo', requestStream: false, responseStream: false,
    requestSerialize: ident, requestDeserialize: ident, responseSerialize: ident, responseDeserialize: ident },
} satisfies grpc.ServiceDefinition;

/** The generated client of {@link SERVICE}. */
export interface BenchClient extends grpc.Client {
  stream(): grpc.ClientDuplexStream<Buffer, Buffer>;
  echo(req: Buffer, cb: (err: grpc.ServiceError | null, res?: Buffer) => void): grpc.ClientUnaryCall;
}
const BenchClientCtor = grpc.makeGenericClientConstructor(SERVICE, 'Bench') as unknown as new (
  address: string, creds: grpc.ChannelCredentials, options?: grpc.ChannelOptions) => BenchClient;

function serverCreds(certsDir: string): grpc.ServerCredentials {
  const c = loadCerts(certsDir);
  return grpc.ServerCredentials.createSsl(Buffer.from(c.ca), [{ private_key: Buffer.from(c.serverKey), cert_chain: Buffer.from(c.serverCert) }], true);
}

/** A client of the bench service with its own HTTP/2 connection to 127.0.0.1:`port` (mTLS with the bench certificates). */
export function newClient(certsDir: string, port: number): BenchClient {
  const c = loadCerts(certsDir);
  const creds = grpc.credentials.createSsl(Buffer.from(c.ca), Buffer.from(c.clientKey), Buffer.from(c.clientCert));
  // A local subchannel pool gives every client its own HTTP/2 connection (grpc-js shares them by default).
  return new BenchClientCtor(`127.0.0.1:${port}`, creds, { 'grpc.ssl_target_name_override': 'localhost', 'grpc.use_local_subchannel_pool': 1 });
}

function listen(server: grpc.Server, certsDir: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.bindAsync('127.0.0.1:0', serverCreds(certsDir), (err, port) => (err ? reject(err) : resolve(port)));
  });
}

async function recvRole(argv: string[]): Promise<void> {
  const warmup = Number(argValue(argv, 'warmup', '0.3'));
  const duration = Number(argValue(argv, 'duration', '1'));
  let msgs = 0;
  let bytes = 0;
  let rejected = 0;
  let firstReject = '';
  let started = false;
  let mark: [number, number, number, number] | null = null;
  const calls = new Set<grpc.ServerDuplexStream<Buffer, Buffer>>();
  const server = new grpc.Server();
  server.addService(SERVICE, {
    stream: (call: grpc.ServerDuplexStream<Buffer, Buffer>) => {
      calls.add(call);
      call.on('data', (body: Buffer) => {
        if (!started) {
          started = true;
          setTimeout(() => {
            mark = [now(), msgs, bytes, cpuMicros()];
            setTimeout(finish, duration * 1000);
          }, warmup * 1000);
        }
        bytes += body.length + 4;
        // Only a message that verified and decoded is counted; a bad one is counted in `rejected` (the suite fails
        // a row with rejections), as tulipwire's MessageProtocol does.
        try {
          verifyBody(body, epochNow());
          msgs++;
        } catch (e) {
          if (rejected++ === 0) firstReject = errorText(e);
        }
      });
      call.on('error', () => {});
    },
    echo: (_call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => cb(null, Buffer.alloc(0)),
  });
  function finish(): void {
    const [t0, m0, b0, c0] = mark!;
    emitEvent({ event: 'result', msgs: msgs - m0, bytes: bytes - b0, seconds: now() - t0, cpuUs: cpuMicros() - c0, rejected, firstReject });
    server.forceShutdown();
    setTimeout(() => process.exit(0), 50);
  }
  emitEvent({ event: 'listening', port: await listen(server, argValue(argv, 'certs', '')) });
}

async function sendRole(argv: string[]): Promise<void> {
  const certs = argValue(argv, 'certs', '');
  const port = Number(argValue(argv, 'port', '0'));
  const conns = Number(argValue(argv, 'conns', '1'));
  const pad = Number(argValue(argv, 'pad', '0'));
  // Pre-signed: 1024 bodies with distinct nonces, valid for an hour, cycled.
  const nonces = new NoncePool();
  const exp = epochNow() + 3600;
  const pool = Array.from({ length: 1024 }, (_, i) => signBody(gameMessage(pad, i + 1), exp, nonces.take()));
  const clients = Array.from({ length: conns }, () => newClient(certs, port));
  await Promise.all(clients.map((c) => new Promise<void>((res, rej) => c.waitForReady(Date.now() + 30_000, (e) => (e ? rej(e) : res())))));
  let sent = 0;
  let open = conns;
  const c0 = cpuMicros();
  for (const client of clients) {
    const call = client.stream();
    let closed = false;
    let k = 0;
    const done = (): void => {
      if (closed) return;
      closed = true;
      if (--open === 0) {
        emitEvent({ event: 'result', sent, cpuUs: cpuMicros() - c0 });
        process.exit(0);
      }
    };
    const pump = (): void => {
      while (!closed) {
        sent++;
        if (!call.write(pool[k++ & 1023]!)) {
          call.once('drain', pump);
          return;
        }
      }
    };
    call.on('error', done);
    call.on('end', done);
    call.on('close', done);
    call.on('data', () => {});
    pump();
  }
}

async function echoServerRole(argv: string[]): Promise<void> {
  const nonces = new NoncePool();
  const server = new grpc.Server();
  server.addService(SERVICE, {
    stream: (call: grpc.ServerDuplexStream<Buffer, Buffer>) => call.end(),
    echo: (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => {
      const t = epochNow();
      try {
        cb(null, signBody(verifyBody(call.request, t), t + PEER_TTL, nonces.take()));
      } catch (err) {
        cb({ code: grpc.status.INVALID_ARGUMENT, details: errorText(err) });
      }
    },
  });
  emitEvent({ event: 'listening', port: await listen(server, argValue(argv, 'certs', '')) });
}

async function pingRole(argv: string[]): Promise<void> {
  const count = Number(argValue(argv, 'count', '1000'));
  const warmup = Number(argValue(argv, 'warmup', '100'));
  const duration = Number(argValue(argv, 'duration', '1'));
  const pad = Number(argValue(argv, 'pad', '0'));
  const client = newClient(argValue(argv, 'certs', ''), Number(argValue(argv, 'port', '0')));
  const nonces = new NoncePool();
  const samples: number[] = [];
  let deadline = Infinity;
  for (let i = 1; samples.length < count; i++) {
    const t0 = now();
    const res = await new Promise<Buffer>((resolve, reject) =>
      client.echo(signBody(gameMessage(pad, i), epochNow() + PEER_TTL, nonces.take()), (err, r) => (err ? reject(err) : resolve(r!))));
    verifyBody(res, epochNow());
    const t = now();
    if (i > warmup) {
      if (deadline === Infinity) deadline = t + duration;
      samples.push((t - t0) * 1e6);
      if (t > deadline) break;
    }
  }
  emitEvent({ event: 'result', ...summarise(samples) });
  client.close();
  process.exit(0);
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const role = argValue(argv, 'role', '');
  if (role !== '') exitWithParent();
  if (role === 'recv') await recvRole(argv);
  else if (role === 'send') await sendRole(argv);
  else if (role === 'echo-server') await echoServerRole(argv);
  else if (role === 'ping') await pingRole(argv);
  else await compareRun('grpc', ['grpc'], parseFlags());
}

if (isMain(import.meta.url)) {
  main().catch((err: unknown) => {
    process.stderr.write(`grpc: ${errorText(err)}\n`);
    process.exit(1);
  });
}
