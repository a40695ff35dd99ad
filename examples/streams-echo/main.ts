/**
 * An echo over TLS 1.3 with streams: `startServer` hands each connection a reader and a writer; the handler
 * iterates over lines (`for await`) and writes each back, awaiting `drain()`; the client uses `openConnection`.
 *
 *     npx tsx examples/streams-echo/main.ts
 *
 * TLS options are injectable (`serverSsl`/`clientSsl`); by default they are mutual TLS from a private CA made in a
 * temp directory (examples/shared/temp-ca.ts): the server requires a client certificate from that CA, and both ends
 * trust only its pinned root.
 */
import type { AddressInfo } from 'node:net';
import type { ConnectionOptions, TlsOptions } from 'node:tls';
import { pathToFileURL } from 'node:url';
import { exampleFlags } from '../shared/args.js';
import { EventLoop, openConnection, startServer } from '../../src/index.js';
import type { Future, StreamReader, StreamWriter } from '../../src/index.js';
import { tempMtls } from '../shared/temp-ca.js';

/** Options of {@link main}. */
export interface StreamsEchoOptions {
  /** Server TLS options (default: mutual TLS from a private CA made in a temp directory). */
  serverSsl?: TlsOptions;
  /** Client TLS options (default: a client certificate from that CA). */
  clientSsl?: ConnectionOptions;
  /** Lines the client sends (default three). */
  lines?: string[];
  /** Where lines go (default `console.log`). */
  print?: (line: string) => void;
  /** The loop to run on (default a new one, closed at the end). */
  loop?: EventLoop;
}

/** What {@link main} returns. */
export interface StreamsEchoResult {
  /** The lines that came back, in order. */
  replies: string[];
  /** The port the server listened on. */
  port: number;
}

/** The server side: echo each line, then close when the client half-closes. */
export async function handleClient(reader: StreamReader, writer: StreamWriter): Promise<void> {
  for await (const line of reader) {
    writer.write(line);
    await writer.drain();
  }
  writer.close();
  await writer.waitClosed();
}

/** Runs the streams echo server and one client against it; returns the replies. */
export async function main(opts: StreamsEchoOptions = {}): Promise<StreamsEchoResult> {
  // Certificates are made before the loop runs; both ends then trust only this CA.
  const pki = opts.serverSsl === undefined || opts.clientSsl === undefined ? await tempMtls() : null;
  const serverSsl = opts.serverSsl ?? pki!.serverSsl;
  const clientSsl = opts.clientSsl ?? pki!.clientSsl;
  const lines = opts.lines ?? ['hello', 'tulip', 'wire'];
  const print = opts.print ?? ((line: string) => console.log(line));
  const loop = opts.loop ?? new EventLoop();
  try {
    return await loop.runUntilComplete(async () => {
      // Keep each handler's completion, so the example ends only after the server side finished too.
      const handlers: Future<void>[] = [];
      const server = await startServer((reader, writer) => {
        const done = loop.createFuture<void>();
        handlers.push(done);
        return handleClient(reader, writer).finally(() => done.setResult(undefined));
      }, '127.0.0.1', 0, { ssl: serverSsl, loop });
      const port = (server.sockets[0]!.address() as AddressInfo).port;
      print(`streams echo server on 127.0.0.1:${port}`);
      const [reader, writer] = await openConnection('127.0.0.1', port, { ssl: clientSsl, loop });
      const replies: string[] = [];
      for (const line of lines) {
        writer.write(`${line}\n`);
        await writer.drain();
        const reply = (await reader.readline()).toString().trimEnd();
        print(`echoed: ${reply}`);
        replies.push(reply);
      }
      writer.writeEof(); // TLS 1.3 half-close: the server sees EOF, finishes, closes
      await reader.read();
      writer.close();
      await writer.waitClosed();
      server.close();
      await server.waitClosed();
      for (const h of handlers) await h;
      return { replies, port };
    });
  } finally {
    if (opts.loop === undefined) loop.close();
    await pki?.cleanup();
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  exampleFlags('usage: npx tsx examples/streams-echo/main.ts', {});
  await main();
}
