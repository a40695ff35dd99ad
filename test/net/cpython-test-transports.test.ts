/**
 * Ports of CPython 3.13 Lib/test/test_asyncio/test_transports.py cases that had no port yet:
 * TransportTests.test_ctor_extra_is_none, test_get_extra_info, test_writelines, on a minimal `StreamTransportBase`
 * backend (asyncio's `class MyTransport(asyncio.Transport)`). Each `it` names its CPython case
 * (`file.Class.test_name`). test_flowcontrol_mixin_set_write_limits is in cpython-net.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { ProtocolBase, StreamTransportBase, sleep } from '../../src/index.js';
import type { AnyProtocol, EventLoop, StreamTransportBaseOptions } from '../../src/index.js';
import { useLoop } from '../support/loop.js';

/**
 * asyncio's `class MyTransport(asyncio.Transport)`: a backend that only records what the shared transport code
 * hands it, so the base class's own behaviour is what is tested.
 */
class RecordingTransport extends StreamTransportBase {
  readonly writes: { chunks: Buffer[]; total: number }[] = [];
  constructor(loop: EventLoop, protocol: AnyProtocol, options?: StreamTransportBaseOptions) {
    super(loop, protocol, options);
  }
  protected _writeChunks(chunks: Uint8Array[], total: number): void {
    this.writes.push({ chunks: chunks.map((c) => Buffer.from(c)), total });
  }
  protected _backendBufferSize(): number {
    return 0;
  }
  protected _backendWriteEof(): void {}
  protected _backendClose(): void {
    this._connectionLost(null);
  }
  protected _backendAbort(): void {
    this._connectionLost(null);
  }
  protected _backendPauseReading(): void {}
  protected _backendResumeReading(): void {}
  protected _backendExtraInfo(_name: string): unknown {
    return undefined;
  }
  canWriteEof(): boolean {
    return false;
  }
}

describe('test_transports.py', () => {
  const lf = useLoop();

  it('test_transports.TransportTests.test_ctor_extra_is_none: without extra info every key gives the default (asyncio: _extra == {})', () => {
    const t = new RecordingTransport(lf.loop, new ProtocolBase());
    expect(t.getExtraInfo('extra')).toBeUndefined();
    expect(t.getExtraInfo('peername', 'dflt')).toBe('dflt');
    // Not even Object.prototype's keys leak through.
    expect(t.getExtraInfo('toString')).toBeUndefined();
    expect(t.getExtraInfo('constructor', null)).toBeNull();
  });

  it('test_transports.TransportTests.test_get_extra_info: a given key is served, an unknown one gives undefined (asyncio: None) or the default given', () => {
    const t = new RecordingTransport(lf.loop, new ProtocolBase(), { extra: { extra: 'info' } });
    expect(t.getExtraInfo('extra')).toBe('info');
    expect(t.getExtraInfo('unknown')).toBeUndefined();
    const dflt = {};
    expect(t.getExtraInfo('unknown', dflt)).toBe(dflt);
    // A present key wins over the default.
    expect(t.getExtraInfo('extra', dflt)).toBe('info');
  });

  it('test_transports.TransportTests.test_writelines: three chunks (a Buffer, a Uint8Array and a view) reach the backend in one write of line1line2line3', async () => {
    const t = new RecordingTransport(lf.loop, new ProtocolBase());
    const big = Buffer.from('xxline3xx');
    await lf.run(async () => {
      t.writelines([Buffer.from('line1'), new Uint8Array(Buffer.from('line2')), big.subarray(2, 7)]);
      expect(t.writes).toEqual([]); // corked until the end of this iteration
      await sleep(0);
    });
    expect(t.writes.length).toBe(1);
    expect(t.writes[0]!.total).toBe(15);
    expect(Buffer.concat(t.writes[0]!.chunks).toString()).toBe('line1line2line3');
    t.abort();
  });
});
