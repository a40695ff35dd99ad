import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import * as api from '../src/index.js';
import { ERROR_CLASSES, ErrorGroup, TulipError, errorFromCode, isCancelledError, CancelledError, RpcError, TimeoutError } from '../src/index.js';

/** The class-name → code rule of docs/errors.md: TW_ + SCREAMING_SNAKE, no `Error` suffix, acronyms one word. */
function expectedCode(name: string): string {
  const base = name.replace(/Error$/, '') || name;
  if (base === 'Tulip') return 'TW_ERROR';
  const snake = base.replace(/([a-z0-9])([A-Z])/g, '$1_$2').replace(/([A-Z]+)([A-Z][a-z])/g, '$1_$2').toUpperCase();
  return `TW_${snake}`;
}

type ErrorClass = (abstract new (...args: never[]) => Error) & { readonly code: string };

/** Every error class the package exports with a stable `code`: TulipError and its subclasses, and ErrorGroup. */
const EXPORTED: readonly (readonly [string, ErrorClass])[] = Object.entries(api)
  .filter(([, v]) => typeof v === 'function' && typeof (v as { code?: unknown }).code === 'string'
    && (v === TulipError || (v as { prototype?: unknown }).prototype instanceof Error))
  .map(([k, v]) => [k, v as ErrorClass] as const);
const EXPORTED_TULIP = EXPORTED.filter(([, c]) => c === TulipError || c.prototype instanceof TulipError)
  .map(([, c]) => c as unknown as typeof TulipError);

/** Arguments for the classes whose constructors need more than (message?, options?). */
const CTOR_ARGS: Record<string, unknown[]> = {
  IncompleteReadError: [Buffer.from('ab'), 5],
  LimitOverrunError: ['separator is not found, and chunk exceed the limit', 3],
  FrameTooLarge: [2_000_000, 1_048_576],
};

function make(cls: typeof TulipError): TulipError {
  if (cls.length <= 2) return new cls();
  const args = CTOR_ARGS[cls.name];
  if (args === undefined) throw new Error(`${cls.name}: add its constructor arguments to CTOR_ARGS`);
  return new (cls as unknown as new (...a: unknown[]) => TulipError)(...args);
}

describe('error table', () => {
  it('the TulipErrorCode type lists exactly the codes of the exported classes', () => {
    // The class statics are typed `string` (so subclasses can set theirs), so the union cannot be checked by tsc:
    // read it from the source. A class added without its union member fails here.
    const src = readFileSync(fileURLToPath(new URL('../src/errors.ts', import.meta.url)), 'utf8');
    const union = /export type TulipErrorCode =([^;]*);/.exec(src)![1]!;
    const listed = [...union.matchAll(/'(TW_[A-Z_]+)'/g)].map((m) => m[1]).sort();
    expect(listed).toEqual([...new Set(EXPORTED.map(([, c]) => c.code))].sort());
  });

  it('finds the exported error classes', () => {
    expect(EXPORTED.length).toBeGreaterThan(ERROR_CLASSES.length);
    expect(EXPORTED.map(([, c]) => c)).toContain(ErrorGroup);
    for (const [name, c] of EXPORTED) expect(c.name).toBe(name);
  });

  it.each(EXPORTED_TULIP.map((c) => [c.name, c] as const))('%s has name, code, instanceof and a message', (name, cls) => {
    const err = make(cls);
    expect(err.code).toBe(expectedCode(name));
    expect(cls.code).toBe(err.code);
    expect(err.name).toBe(name);
    expect(err).toBeInstanceOf(TulipError);
    expect(err).toBeInstanceOf(Error);
    expect(TulipError.isTulipError(err)).toBe(true);
    expect(err.message.length).toBeGreaterThan(0);
  });

  it('ERROR_CLASSES holds every exported TulipError class but those whose constructors need extra arguments', () => {
    for (const c of ERROR_CLASSES) expect(EXPORTED_TULIP).toContain(c);
    const missing = EXPORTED_TULIP.filter((c) => !ERROR_CLASSES.includes(c)).map((c) => c.name).sort();
    expect(missing).toEqual(EXPORTED_TULIP.filter((c) => c.length > 2).map((c) => c.name).sort());
    expect(missing).toEqual(['FrameTooLarge', 'IncompleteReadError', 'LimitOverrunError']);
  });

  it('ErrorGroup is an AggregateError with its own code', () => {
    const g = new ErrorGroup('two failed', [new Error('a'), new Error('b')]);
    expect(g).toBeInstanceOf(AggregateError);
    expect(g.code).toBe('TW_ERROR_GROUP');
    expect(g.errors).toHaveLength(2);
  });

  it('maps wire codes back to classes', () => {
    const e = errorFromCode('TW_TIMEOUT', 'peer timed out');
    expect(e).toBeInstanceOf(TimeoutError);
    expect(e.remote).toBe(true);
    // A peer's TW_CANCELLED is never a CancelledError: it would cancel the caller's Task (test/wire/remote-cancel).
    const c = errorFromCode('TW_CANCELLED', 'peer cancelled');
    expect(isCancelledError(c)).toBe(false);
    expect(c).not.toBeInstanceOf(CancelledError);
    expect(c).toMatchObject({ code: 'TW_RPC', remoteCode: 'TW_CANCELLED', remote: true });
    const r = errorFromCode('GAME_ROOM_FULL', 'room is full', { room: 3 });
    expect(r).toBeInstanceOf(RpcError);
    expect((r as RpcError).remoteCode).toBe('GAME_ROOM_FULL');
    expect((r as RpcError).data).toEqual({ room: 3 });
    // Classes outside ERROR_CLASSES come back as RpcError carrying their code (docs/errors.md).
    const f = errorFromCode('TW_FRAME_TOO_LARGE', 'frame too large', { size: 2, limit: 1 });
    expect(f).toBeInstanceOf(RpcError);
    expect(f).toMatchObject({ code: 'TW_RPC', remoteCode: 'TW_FRAME_TOO_LARGE', data: { size: 2, limit: 1 }, remote: true });
  });
});

describe('docs/errors.md', () => {
  it('has a row for every exported error class with its code, name and parent, and no other row', async () => {
    const { readFile } = await import('node:fs/promises');
    const doc = await readFile(new URL('../docs/errors.md', import.meta.url), 'utf8');
    for (const [name, cls] of EXPORTED) {
      const parent = (Object.getPrototypeOf(cls) as { name: string }).name;
      expect(doc, `row of ${name}`).toContain(`| \`${cls.code}\` | \`${name}\` | ${parent} |`);
    }
    const rows = [...doc.matchAll(/^\| `(TW_[A-Z_]+)` \|/gm)].map((m) => m[1]).sort();
    expect(rows).toEqual(EXPORTED.map(([, c]) => c.code).sort());
  });
});
