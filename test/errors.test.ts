import { describe, expect, it } from 'vitest';
import { ERROR_CLASSES, ErrorGroup, TulipError, errorFromCode, isCancelledError, CancelledError, RpcError } from '../src/index.js';

/** The class-name → code rule of STYLE §7.3: TW_ + SCREAMING_SNAKE, no `Error` suffix, acronyms one word. */
function expectedCode(name: string): string {
  const base = name.replace(/Error$/, '') || name;
  if (base === 'Tulip') return 'TW_ERROR';
  const snake = base.replace(/([a-z0-9])([A-Z])/g, '$1_$2').replace(/([A-Z]+)([A-Z][a-z])/g, '$1_$2').toUpperCase();
  return `TW_${snake}`;
}

describe('error table', () => {
  it.each(ERROR_CLASSES.map((c) => [c.name, c] as const))('%s has name, code, instanceof and a message', (name, cls) => {
    const err = cls.length <= 2 ? new cls() : new (cls as unknown as new (...a: unknown[]) => TulipError)(Buffer.alloc(0), 1);
    expect(err.code).toBe(expectedCode(name));
    expect(cls.code).toBe(err.code);
    expect(err.name).toBe(name);
    expect(err).toBeInstanceOf(TulipError);
    expect(err).toBeInstanceOf(Error);
    expect(TulipError.isTulipError(err)).toBe(true);
    expect(err.message.length).toBeGreaterThan(0);
  });

  it('ErrorGroup is an AggregateError with its own code', () => {
    const g = new ErrorGroup('two failed', [new Error('a'), new Error('b')]);
    expect(g).toBeInstanceOf(AggregateError);
    expect(g.code).toBe('TW_ERROR_GROUP');
    expect(g.errors).toHaveLength(2);
  });

  it('maps wire codes back to classes', () => {
    const e = errorFromCode('TW_CANCELLED', 'peer cancelled');
    expect(isCancelledError(e)).toBe(true);
    expect(e).toBeInstanceOf(CancelledError);
    expect(e.remote).toBe(true);
    const r = errorFromCode('GAME_ROOM_FULL', 'room is full', { room: 3 });
    expect(r).toBeInstanceOf(RpcError);
    expect((r as RpcError).remoteCode).toBe('GAME_ROOM_FULL');
    expect((r as RpcError).data).toEqual({ room: 3 });
  });
});

describe('docs/errors.md', () => {
  it('has a line for every code', async () => {
    const { readFile } = await import('node:fs/promises');
    const doc = await readFile(new URL('../docs/errors.md', import.meta.url), 'utf8');
    for (const c of [...ERROR_CLASSES.map((k) => k.code), ErrorGroup.code]) expect(doc).toContain(`| \`${c}\` |`);
  });
});
