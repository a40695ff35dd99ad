/** The net examples run as tests: each exports `main(opts)`, driven and checked here (as undici's test/examples.js). */
import { describe, expect, it } from 'vitest';
import { main as echoMain } from '../../examples/echo/main.js';
import { main as streamsEchoMain } from '../../examples/streams-echo/main.js';
import { tlsFixture } from '../support/tls-fixture.js';

describe('examples', () => {
  it('examples/echo: the Protocol echo over TLS 1.3 returns every byte', async () => {
    const lines: string[] = [];
    const r = await echoMain({ messages: ['one\n', 'two\n', 'x'.repeat(100_000)], print: (l) => lines.push(l) });
    expect(r.echoed).toBe(`one\ntwo\n${'x'.repeat(100_000)}`);
    expect(r.tlsVersion).toBe('TLSv1.3');
    expect(lines[0]).toMatch(/^echo server on 127\.0\.0\.1:\d+$/);
  });

  it('examples/streams-echo: line by line over TLS with injected options', async () => {
    const fx = tlsFixture();
    const r = await streamsEchoMain({
      serverSsl: fx.serverOptions({ mtls: true }), clientSsl: fx.clientOptions({ mtls: true }),
      lines: ['alpha', 'beta', 'gamma'], print: () => {},
    });
    expect(r.replies).toEqual(['alpha', 'beta', 'gamma']);
    expect(r.port).toBeGreaterThan(0);
  });
});
