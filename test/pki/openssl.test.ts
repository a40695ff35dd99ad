/**
 * Interop with OpenSSL's own client: `openssl s_client` holding a project client certificate connects to a
 * project mTLS server (and verifies the server against the project root); without a certificate it is refused.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { splitPemCertificates } from '../../src/pki/index.js';
import type { TestCA } from '../support/ca.js';
import { makeTestCA } from '../support/ca.js';
import type { EchoServer } from './helpers.js';
import { startEchoServer } from './helpers.js';

let t: TestCA;
let srv: EchoServer;
const children: ChildProcessWithoutNullStreams[] = [];

beforeAll(async () => {
  t = await makeTestCA();
  const [leaf, inter] = splitPemCertificates(t.client.chain.pem);
  writeFileSync(join(t.dir, 'client-leaf.pem'), leaf!);
  writeFileSync(join(t.dir, 'client-inter.pem'), inter!);
  writeFileSync(join(t.dir, 'client-key.pem'), t.client.key.pem, { mode: 0o600 });
  writeFileSync(join(t.dir, 'ca.pem'), t.ca.root.pem);
});
afterAll(async () => {
  await t.cleanup();
});
afterEach(async () => {
  for (const c of children.splice(0)) c.kill('SIGKILL');
  await srv?.close();
});

/** Runs s_client, writes a line, and resolves when `until` shows up in its output or it exits. */
function sClient(port: number, args: string[], until: RegExp): Promise<{ output: string; code: number | null; matched: boolean }> {
  const child = spawn('openssl', [
    's_client', '-connect', `127.0.0.1:${port}`, '-servername', 'localhost', '-tls1_3',
    '-CAfile', join(t.dir, 'ca.pem'), '-verify_return_error', '-verify_hostname', 'localhost', ...args,
  ]);
  children.push(child);
  let output = '';
  return new Promise((resolve) => {
    let done = false;
    const finish = (code: number | null, matched: boolean) => {
      if (done) return;
      done = true;
      resolve({ output, code, matched });
    };
    const onData = (d: Buffer) => {
      output += d.toString();
      if (until.test(output)) finish(null, true);
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('exit', (code) => finish(code, until.test(output)));
    child.stdin.write('ping-from-openssl\n');
  });
}

describe('openssl s_client against a project server', () => {
  it('connects with a project client certificate (leaf + intermediate) and gets the echo', async () => {
    srv = await startEchoServer(t.serverOptions);
    const r = await sClient(srv.port, [
      '-cert', join(t.dir, 'client-leaf.pem'), '-cert_chain', join(t.dir, 'client-inter.pem'), '-key', join(t.dir, 'client-key.pem'),
    ], /ping-from-openssl/);
    expect(r.matched).toBe(true);
    expect(r.output).toMatch(/Verification: OK|Verify return code: 0 \(ok\)/);
    expect(srv.accepted).toHaveLength(1);
    expect(srv.accepted[0]!.identity).toBe('tulip://test.tulipwire/client/test-client');
  });

  it('is refused without a client certificate, and the server reports NoClientCertificate', async () => {
    srv = await startEchoServer(t.serverOptions);
    const r = await sClient(srv.port, [], /alert certificate required|alert number 116/);
    expect(r.matched).toBe(true);
    expect(r.output).not.toMatch(/ping-from-openssl\n.*ping-from-openssl/s);
    const rejection = await srv.nextRejection();
    expect(rejection.mapped?.code).toBe('TW_NO_CLIENT_CERTIFICATE');
    expect(srv.accepted).toHaveLength(0);
  });
});
