/**
 * examples/ca-rotation with 3 s client certificates (4.5 s server ones) over real mutual TLS: both rotate under
 * live connections, the session reconnects after each RECONNECT notice with its renewed certificate, new
 * connections see new serials, and the stream of idempotent signed calls loses nothing and runs nothing twice.
 */
import { describe, expect, it } from 'vitest';
import { main } from '../../examples/ca-rotation/main.js';

describe('examples/ca-rotation', () => {
  it('rotates both certificates under a live session: serials change, no message lost or run twice, nothing outlives its certificate', async () => {
    const lines: string[] = [];
    const r = await main({ lifetime: 3, duration: 6.5, print: (l) => lines.push(l) });

    // The stream: every call answered exactly once.
    expect(r.errors).toEqual({});
    expect(r.messages.sent).toBeGreaterThan(50);
    expect(r.messages).toEqual({ sent: r.messages.sent, answered: r.messages.sent, lost: 0, executed: r.messages.sent, duplicates: 0 });

    // Rotation: the client certificate renewed at 2/3 of its life (twice in 6.5 s), the server's at least once.
    expect(r.rotations.client).toBeGreaterThanOrEqual(2);
    expect(r.rotations.server).toBeGreaterThanOrEqual(1);
    expect(new Set(r.clientSerials).size).toBe(r.clientSerials.length);
    expect(r.clientSerials.length).toBeGreaterThanOrEqual(3); // the first and two renewals, each seen by the server
    expect(r.serverSerials.length).toBeGreaterThanOrEqual(2); // new connections got the renewed server certificate
    expect(r.probes.made).toBeGreaterThan(5);
    expect(r.probes.serials.length).toBeGreaterThanOrEqual(2);

    // The session moved to a new connection after each notice (the server also sends one when its own certificate
    // is the first to expire, so the last noticed connection may still be the current one when the run ends), and no
    // connection outlived a certificate.
    expect(r.notices).toBeGreaterThanOrEqual(2);
    expect(r.reconnects).toBeGreaterThanOrEqual(r.notices - 1);
    expect(r.outlived).toBe(0);
    const closed = r.connections.filter((c) => c.closedAt !== null);
    expect(closed.length).toBeGreaterThanOrEqual(2);
    for (const c of closed) expect(c.closedAt!).toBeLessThanOrEqual(c.closesAt + 0.5);
    // The connection that carried the stream was replaced by the session (make-before-break) or, at the latest,
    // closed by the server at notAfter; in both cases the stream went on without loss (above).
    for (const c of closed) expect(['client', 'certificate expiry', 'TW_SESSION_CLOSED']).toContain(c.reason);
    expect(r.drain).toMatchObject({ closedAtTimeout: 0 });
    expect(lines.join('\n')).toContain('RECONNECT notice');
  }, 30_000);
});
