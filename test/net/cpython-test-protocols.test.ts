/**
 * Ports of CPython 3.13 Lib/test/test_asyncio/test_protocols.py cases: the no-op protocol bases. Where tulipwire
 * deliberately differs the title says so.
 */
import { describe, expect, it } from 'vitest';
import { BufferedProtocolBase, ProtocolBase, isBufferedProtocol } from '../../src/index.js';
import type { Transport } from '../../src/index.js';

describe('test_protocols.py', () => {
  const fake = {} as Transport;

  it('test_base_protocol / test_protocol (test_protocols): every ProtocolBase callback does nothing and returns undefined', () => {
    const p = new ProtocolBase();
    expect(p.connectionMade(fake)).toBeUndefined();
    expect(p.connectionLost(null)).toBeUndefined();
    expect(p.dataReceived(Buffer.from('x'))).toBeUndefined();
    expect(p.eofReceived()).toBeUndefined();
    expect(p.pauseWriting()).toBeUndefined();
    expect(p.resumeWriting()).toBeUndefined();
    expect(isBufferedProtocol(p)).toBe(false);
  });

  it('test_buffered_protocol (test_protocols), deliberately different: BufferedProtocolBase.getBuffer returns its reusable buffer (asyncio\'s abstract get_buffer returns None); the other callbacks return undefined', () => {
    const p = new BufferedProtocolBase(100);
    expect(p.connectionMade(fake)).toBeUndefined();
    expect(p.connectionLost(null)).toBeUndefined();
    const buf = p.getBuffer(100);
    expect(buf).toBe(p.buffer);
    expect(buf.length).toBe(100);
    expect(p.bufferUpdated(150)).toBeUndefined();
    expect(p.eofReceived()).toBeUndefined();
    expect(p.pauseWriting()).toBeUndefined();
    expect(p.resumeWriting()).toBeUndefined();
    expect(isBufferedProtocol(p)).toBe(true);
    expect(() => new BufferedProtocolBase(0)).toThrow(RangeError);
  });
});
