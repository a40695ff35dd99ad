/**
 * The headline benchmark: one-way signed-message throughput of tulipwire's `MessageProtocol` over one mTLS
 * connection (~100 B game message, 1 KiB, 16 KiB) and over 16 and 256 connections, and signed RPC round-trip
 * latency (p50/p99/max), each beside raw `node:tls` moving the same bytes unsigned, the Python asyncio and uvloop
 * peer (msgpack + hmac) and the grpc-js peer, all measured in this run. Sender and receiver are separate
 * processes (bench/signed-worker.ts for tulipwire).
 *
 * `npx tsx bench/signed.ts [--json] [--quick] [--only <label>] [--duration <s>]`; see bench/README.md.
 */
import { errorText, isMain, parseFlags } from './support/common.js';
import { compareRun } from './support/compare.js';

if (isMain(import.meta.url)) {
  compareRun('signed', ['tulipwire', 'tw-wire', 'naive', 'asyncio', 'uvloop', 'grpc'], parseFlags()).catch((err: unknown) => {
    process.stderr.write(`signed: ${errorText(err)}\n`);
    process.exit(1);
  });
}
