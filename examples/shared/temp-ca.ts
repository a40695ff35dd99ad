/**
 * For the examples: a private CA in a fresh temp directory with one server certificate (localhost, 127.0.0.1) and
 * one client certificate, as pinned mutual-TLS options. `cleanup()` removes the directory.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PrivateCA, clientTlsOptions, serverTlsOptions } from '../../src/index.js';
import type { PkiClientTlsOptions, PkiServerTlsOptions } from '../../src/index.js';

/** What {@link tempMtls} returns. */
export interface TempMtls {
  /** The CA (its root key sits in the temp directory: an example, not a deployment). */
  ca: PrivateCA;
  /** Server options: requires a client certificate from this CA, trusts only it. */
  serverSsl: PkiServerTlsOptions;
  /** Client options: presents `tulip://<name>/<clientId>`, checks the server name `localhost` and the root pin. */
  clientSsl: PkiClientTlsOptions;
  /** Removes the temp directory. */
  cleanup(): Promise<void>;
}

/** Creates the CA and the two certificates (24 h each). */
export async function tempMtls(name = 'example.tulipwire', clientId = 'client/example'): Promise<TempMtls> {
  const dir = await mkdtemp(join(tmpdir(), 'tulipwire-example-'));
  const ca = await PrivateCA.init({ dir, name });
  const server = await ca.issueServer({ dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] });
  const client = await ca.issueClient({ identity: clientId });
  return {
    ca,
    serverSsl: serverTlsOptions(server, { pin: ca.rootPin }),
    clientSsl: clientTlsOptions(client, { servername: 'localhost', pin: ca.rootPin }),
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
}
