/**
 * The child process of test/session/heartbeat-loop-stall.test.ts: a session client that pings every 0.05 s, prints
 * "connected" once up, and closes when its stdin ends. Arguments: the test CA's dir, the server's port, the hex secret.
 */
import { join } from 'node:path';
import { Keyring, PrivateCA, clientTlsOptions, openSession, run, sleep } from '../../src/index.js';

async function main(): Promise<void> {
  const [dir, port, secretHex] = process.argv.slice(2);
  const ca = await PrivateCA.load({ dir: join(dir!, 'ca') });
  const tls = clientTlsOptions(await ca.issueClient({ identity: 'stall-peer' }), { servername: 'localhost', pin: ca.rootPin });
  const keyring = new Keyring();
  keyring.add('stall', Buffer.from(secretHex!, 'hex'));
  let stop = false;
  process.stdin.on('end', () => { stop = true; });
  process.stdin.resume();
  await run(async () => {
    const s = openSession({ port: Number(port), keyring, tls, heartbeatInterval: 0.05, idleTimeout: 30, logger: {} });
    await s.whenConnected();
    process.stdout.write('connected\n');
    while (!stop) await sleep(0.05);
    await s.close();
  }, { handleSignals: false });
}

main().then(() => process.exit(0), (err: unknown) => {
  console.error(err);
  process.exit(1);
});
