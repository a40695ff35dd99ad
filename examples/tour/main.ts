/**
 * The README's API tour, as one program that runs (`npx tsx examples/tour/main.ts`) and is tested in CI
 * (`test/examples/tour.test.ts` runs it and checks that every README snippet appears here verbatim).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { pathToFileURL } from 'node:url';
import { exampleFlags } from '../shared/args.js';
import {
  EventLoop, Keyring, PrivateCA, ProtocolBase, RpcProtocol, RpcRouter, TaskGroup, URLSafeTimedSerializer, VirtualClock,
  clientTlsOptions, getRunningLoop, isCancelledError, peerIdentity, run, serverTlsOptions, sleep, timeout,
} from '../../src/index.js';
import type { Transport } from '../../src/index.js';

/** Runs every part of the tour and returns what each printed, in order. */
export async function main(options: { print?: (line: string) => void } = {}): Promise<string[]> {
  const out: string[] = [];
  const print = (line: string): void => { out.push(line); (options.print ?? console.log)(line); };
  await run(async () => {
    await loopAndTasks(print);
    await virtualTime(print);
    await signedRpcOverMtls(print);
    tokens(print);
  });
  return out;
}

async function loopAndTasks(print: (line: string) => void): Promise<void> {
  // --- tour: tasks
  const loop = getRunningLoop();
  const worker = loop.createTask(async () => {
    try {
      await sleep(3600);                        // seconds, as in asyncio
    } catch (err) {
      if (isCancelledError(err)) print('worker: cancelled, cleaning up');
      throw err;                                // always rethrow CancelledError
    }
  }, { name: 'worker' });
  await sleep(0.01);
  worker.cancel();                              // the await inside the task throws CancelledError
  await sleep(0);
  print(`worker cancelled: ${worker.cancelled()}`);

  try {
    await timeout(0.05, () => sleep(10));       // asyncio.timeout(): cancels the body, raises TimeoutError
  } catch (err) {
    print(`timeout: ${(err as { code: string }).code}`);
  }

  const results = await TaskGroup.run(async (tg) => {
    const a = tg.createTask(() => sleep(0.01, 'a'));
    const b = tg.createTask(() => sleep(0.02, 'b'));
    return [a, b];
  });
  print(`task group: ${results!.map((t) => t.result()).join(',')}`);
  // --- end
}

async function virtualTime(print: (line: string) => void): Promise<void> {
  // --- tour: virtual clock
  const loop = new EventLoop({ clock: new VirtualClock({ autojump: true }) });
  const fired: number[] = [];
  for (const delay of [3600, 60, 1]) loop.callLater(delay, () => fired.push(loop.time()));
  await loop.runUntilComplete(loop.createTask(() => sleep(7200)));   // two hours, in milliseconds of real time
  print(`virtual timers fired at ${fired.join(', ')} s`);
  loop.close();
  // --- end
}

async function signedRpcOverMtls(print: (line: string) => void): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'tulipwire-tour-'));
  try {
    // --- tour: ca
    const ca = await PrivateCA.init({ dir, name: 'game.example' });
    const serverCert = await ca.issueServer({ dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] });   // 24 h
    const clientCert = await ca.issueClient({ identity: 'player/42' });
    const serverSsl = serverTlsOptions(serverCert, { pin: ca.rootPin });    // requires a client certificate
    const clientSsl = clientTlsOptions(clientCert, { servername: 'localhost', pin: ca.rootPin });
    // --- end

    // --- tour: protocol
    class Echo extends ProtocolBase {
      override connectionMade(transport: Transport): void {
        super.connectionMade(transport);
        const peer = peerIdentity(transport.getExtraInfo('peerIdentity'));   // checked, no cast
        print(`echo server: connection from ${peer.identity}`);
      }
      override dataReceived(data: Buffer): void {
        this.transport!.write(data);            // coalesced with other writes of this loop iteration
      }
    }
    // --- end

    const loop = getRunningLoop();
    const echoServer = await loop.createServer(() => new Echo(), '127.0.0.1', 0, { ssl: serverSsl });
    const echoPort = (echoServer.sockets[0]!.address() as { port: number }).port;
    let echoed = '';
    class EchoClient extends ProtocolBase {
      override dataReceived(data: Buffer): void { echoed += data.toString(); }
    }
    const [echoTransport] = await loop.createConnection(() => new EchoClient(), '127.0.0.1', echoPort, { ssl: clientSsl });
    echoTransport.write(Buffer.from('hello over mTLS'));
    while (echoed.length < 15) await sleep(0.005);
    print(`echo client got: ${echoed}`);
    echoTransport.close();
    echoServer.close();
    await echoServer.waitClosed();

    // --- tour: rpc
    const keyring = new Keyring();
    keyring.add('2026-12', randomBytes(32));    // the shared key; add a new kid to rotate, old ones still verify
    const router = new RpcRouter()
      .handle('add', ([a, b]: [number, number]) => a + b)
      .handle('admin.reset', () => 'reset', { roles: 'admin' });
    const server = await loop.createServer(
      () => new RpcProtocol({ keyring, side: 'server', router }), '127.0.0.1', 0, { ssl: serverSsl });
    const port = (server.sockets[0]!.address() as { port: number }).port;
    const [transport, client] = await loop.createConnection(
      () => new RpcProtocol({ keyring, side: 'client' }), '127.0.0.1', port, { ssl: clientSsl });
    print(`add(2, 3) = ${await client.call('add', [2, 3])}`);     // signed request, signed response
    try {
      await client.call('admin.reset');
    } catch (err) {
      print(`admin.reset: ${(err as { code: string }).code}`);   // TW_FORBIDDEN: no role, never a silent drop
    }
    transport.close();                          // open sockets keep Node running: close what you opened
    server.close();
    await server.waitClosed();
    // --- end
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function tokens(print: (line: string) => void): void {
  // --- tour: tokens
  const s = new URLSafeTimedSerializer('secret-key', { salt: 'activate' });
  const token = s.dumps({ user: 42 });                           // loads in Python's itsdangerous too
  const value = s.loads(token, { maxAge: 3600 });
  // --- end
  print(`token ${token.split('.').length} parts, loads back ${JSON.stringify(value)}`);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  exampleFlags('usage: npx tsx examples/tour/main.ts', {});
  main().catch((err) => {
    console.error(err);
    process.exitCode = 1;
  });
}
