/**
 * The option lists the docs spell out (docs/sessions.md's "Options:" paragraphs, docs/pki.md's `PrivateCA.init({…})`,
 * `new CertRotator({…})` and the TLS builders, docs/security-model.md's `new TokenService({…})` and nonce stores):
 * every option of the interface in src/ is named there, and every name listed in a `{…}` signature is an option, so a
 * new option cannot stay undocumented and a renamed one cannot linger. (Defaults are test/docs-constants.test.ts's.)
 */
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';

const read = (path: string): string => readFileSync(new URL(`../${path}`, import.meta.url), 'utf8');

/** The top-level member names of `export interface <name>` in a source file (its own, not inherited ones). */
function keysOf(file: string, name: string): string[] {
  const src = read(file);
  const start = src.search(new RegExp(`^export interface ${name}\\b`, 'm'));
  expect(start, `${name} in ${file}`).toBeGreaterThanOrEqual(0);
  const body = src.slice(start, src.indexOf('\n}', start));
  return [...body.matchAll(/^ {2}(?:readonly )?([A-Za-z_]\w*)\??:/gm)].map((m) => m[1]!);
}

/** The text of `doc` from `from` (exclusive) to the first `to` after it. */
function passage(doc: string, from: string, to: string): string {
  const i = doc.indexOf(from);
  expect(i, `"${from}"`).toBeGreaterThanOrEqual(0);
  const j = doc.indexOf(to, i + from.length);
  expect(j, `"${to}" after "${from}"`).toBeGreaterThan(i);
  return doc.slice(i + from.length, j);
}

/** Names in a `{a, b?, c?}` signature list (a trailing `...` allowed). */
function signatureNames(list: string): string[] {
  return list.split(',').map((s) => s.trim().replace(/\?$/, '')).filter((s) => s !== '' && s !== '...');
}

/** Every key is named in `text` as a code span, or inside a code span's `{…}` list. */
function expectAllNamed(keys: readonly string[], text: string, what: string): void {
  const spans = [...text.matchAll(/`([^`]+)`/g)].map((m) => m[1]!);
  const named = new Set<string>();
  for (const s of spans) for (const w of s.matchAll(/[A-Za-z_]\w*/g)) named.add(w[0]);
  expect(keys.filter((k) => !named.has(k)), `options of ${what} the doc does not name`).toEqual([]);
}

const sessions = read('docs/sessions.md');
const pki = read('docs/pki.md');
const security = read('docs/security-model.md');

describe('docs: option lists match the interfaces', () => {
  it('docs/sessions.md: openSession options (SessionOptions, BackoffOptions)', () => {
    const text = passage(sessions, '\nOptions: ', '\n\n');
    expectAllNamed(keysOf('src/session/session.ts', 'SessionOptions'), text, 'SessionOptions');
    const backoff = /`backoff: \{([^}]*)\}`/.exec(text)![1]!;
    expect(signatureNames(backoff).sort()).toEqual(keysOf('src/session/backoff.ts', 'BackoffOptions').sort());
  });

  it('docs/sessions.md: serveSessions options (SessionServerOptions), the limits in their table', () => {
    const text = passage(sessions, 'Options (each documented on `SessionServerOptions`): ', '\n\n')
      + passage(sessions, '### Per-peer limits', '\n###');
    expectAllNamed(keysOf('src/session/session-server.ts', 'SessionServerOptions'), text, 'SessionServerOptions');
  });

  it.each([
    ['`PrivateCA.init({', '})`', 'PrivateCAInitOptions'],
    ['`PrivateCA.load({', '})`', 'PrivateCALoadOptions'],
  ])('docs/pki.md: %s…%s lists exactly %s', (from, to, iface) => {
    const listed = signatureNames(passage(pki, from, to));
    expect(listed.sort()).toEqual(keysOf('src/pki/ca.ts', iface).sort());
  });

  it('docs/pki.md: ca.issueClient({…}) lists its own options, and only options it has', () => {
    const listed = signatureNames(passage(pki, '`ca.issueClient({', '})`'));
    const own = keysOf('src/pki/ca.ts', 'IssueClientOptions');
    for (const k of own) expect(listed).toContain(k);
    const all = [...own, ...keysOf('src/pki/ca.ts', 'ValidityOptions')];
    expect(listed.filter((k) => !all.includes(k))).toEqual([]);
  });

  it('docs/pki.md: new CertRotator({…}) lists exactly CertRotatorOptions', () => {
    const listed = signatureNames(passage(pki, '`new CertRotator({', '})`'));
    expect(listed.sort()).toEqual(keysOf('src/pki/rotator.ts', 'CertRotatorOptions').sort());
  });

  it('docs/pki.md: the TLS builders list their options', () => {
    const server = signatureNames(passage(pki, '`serverTlsOptions(source, {', '})`'));
    expect(server.sort()).toEqual([...keysOf('src/pki/tls-options.ts', 'PinnedTlsOptions'), ...keysOf('src/pki/tls-options.ts', 'ServerTlsBuildOptions')].sort());
    const client = signatureNames(passage(pki, '`clientTlsOptions(source, {', '})`'));
    const clientKeys = [...keysOf('src/pki/tls-options.ts', 'PinnedTlsOptions'), ...keysOf('src/pki/tls-options.ts', 'ClientTlsBuildOptions')];
    // The client's list ends in `...` ("the same trust"): its own options must be there, and nothing that is none.
    for (const k of keysOf('src/pki/tls-options.ts', 'ClientTlsBuildOptions')) expect(client).toContain(k);
    expect(client.filter((k) => !clientKeys.includes(k))).toEqual([]);
  });

  it('docs/pki.md: issueServer and the shared validity options are all named', () => {
    const text = passage(pki, '- `ca.issueServer({', '\n- `ca.renew(');
    expectAllNamed([...keysOf('src/pki/ca.ts', 'IssueServerOptions'), ...keysOf('src/pki/ca.ts', 'ValidityOptions')], '`' + text, 'IssueServerOptions');
  });

  it('docs/security-model.md: new TokenService({…}) and the nonce stores list exactly their options', () => {
    const tokens = signatureNames(passage(security, 'by `TokenService`: `new TokenService({', '})`'));
    expect(tokens.sort()).toEqual(keysOf('src/tokens/token-service.ts', 'TokenServiceOptions').sort());
    expect(signatureNames(passage(security, '`MemoryNonceStore({', '})`')).sort()).toEqual(keysOf('src/wire/nonces.ts', 'MemoryNonceStoreOptions').sort());
    expect(signatureNames(passage(security, '`RedisNonceStore({', '})`')).sort()).toEqual(keysOf('src/wire/redis-nonces.ts', 'RedisNonceStoreOptions').sort());
  });
});
