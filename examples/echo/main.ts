/**
 * The smallest tulipwire Protocol server and client: an echo over TLS 1.3.
 *
 *     npx tsx examples/echo/main.ts                 # serves on 127.0.0.1 (a free port), sends three lines, prints the echoes
 *
 * The server's protocol writes back whatever it receives; the client's sends its lines when the connection is made
 * and closes once every byte came back. TLS options are injectable (`serverSsl`/`clientSsl`); by default they are
 * mutual TLS from a private CA made in a temp directory (examples/shared/temp-ca.ts): the server requires a client
 * certificate from that CA, and both ends trust only its pinned root.
 */
import type { AddressInfo } from 'node:net';
import type { ConnectionOptions, TlsOptions } from 'node:tls';
import { pathToFileURL } from 'node:url';
import { exampleFlags } from '../shared/args.js';
import { EventLoop, ProtocolBase } from '../../src/index.js';
import type { Future, Transport } from '../../src/index.js';
import { tempMtls } from '../shared/temp-ca.js';

/** Options of {@link main}. */
export interface EchoOptions {
  /** Server TLS options (default: mutual TLS from a private CA made in a temp directory). */
  serverSsl?: TlsOptions;
  /** Client TLS options (default: a client certificate from that CA). */
  clientSsl?: ConnectionOptions;
  /** What the client sends (default three lines). */
  messages?: string[];
  /** Where lines go (default `console.log`). */
  print?: (line: string) => void;
  /** The loop to run on (default a new one, closed at the end). */
  loop?: EventLoop;
}

/** What {@link main} returns. */
export interface EchoResult {
  /** Everything the client got back, as text. */
  echoed: string;
  /** The port the server listened on. */
  port: number;
  /** The TLS version the connection used. */
  tlsVersion: unknown;
}

/** Echoes every byte back. */
export class EchoServerProtocol extends ProtocolBase {
  override dataReceived(data: Buffer): void {
    this.transport!.write(data);
  }
}

/** Sends its messages, collects the echo, closes when it is all back. */
export class EchoClientProtocol extends ProtocolBase {
  readonly #expected: number;
  readonly #messages: string[];
  readonly #chunks: Buffer[] = [];
  #received = 0;
  /** Resolves with the echoed text once the connection is closed. */
  readonly done: Future<string>;

  constructor(loop: EventLoop, messages: string[]) {
    super();
    this.#messages = messages;
    this.#expected = messages.reduce((n, m) => n + Buffer.byteLength(m), 0);
    this.done = loop.createFuture<string>();
  }

  override connectionMade(transport: Transport): void {
    super.connectionMade(transport);
    // All writes of this callback leave in one socket write at the end of the loop iteration.
    for (const m of this.#messages) transport.write(Buffer.from(m));
  }

  override dataReceived(data: Buffer): void {
    this.#chunks.push(data);
    this.#received += data.length;
    if (this.#received >= this.#expected) this.transport!.close();
  }

  override connectionLost(exc: Error | null): void {
    if (exc !== null) this.done.setException(exc);
    else this.done.setResult(Buffer.concat(this.#chunks).toString());
  }
}

/** Runs the echo server and one client against it; returns what came back. */
export async function main(opts: EchoOptions = {}): Promise<EchoResult> {
  // Certificates are made before the loop runs; both ends then trust only this CA.
  const pki = opts.serverSsl === undefined || opts.clientSsl === undefined ? await tempMtls() : null;
  const serverSsl = opts.serverSsl ?? pki!.serverSsl;
  const clientSsl = opts.clientSsl ?? pki!.clientSsl;
  const messages = opts.messages ?? ['hello\n', 'tulip\n', 'wire\n'];
  const print = opts.print ?? ((line: string) => console.log(line));
  const loop = opts.loop ?? new EventLoop();
  try {
    return await loop.runUntilComplete(async () => {
      const server = await loop.createServer(() => new EchoServerProtocol(), '127.0.0.1', 0, { ssl: serverSsl });
      const port = (server.sockets[0]!.address() as AddressInfo).port;
      print(`echo server on 127.0.0.1:${port}`);
      const client = new EchoClientProtocol(loop, messages);
      const [transport] = await loop.createConnection(() => client, '127.0.0.1', port, { ssl: clientSsl });
      const tlsVersion = transport.getExtraInfo('tlsVersion');
      const echoed = await client.done;
      for (const line of echoed.split('\n').filter(Boolean)) print(`echoed: ${line}`);
      server.close();
      await server.waitClosed();
      return { echoed, port, tlsVersion };
    });
  } finally {
    if (opts.loop === undefined) loop.close();
    await pki?.cleanup();
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  exampleFlags('usage: npx tsx examples/echo/main.ts', {});
  await main();
}
