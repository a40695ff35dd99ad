/**
 * Tokens that a Python service verifies: makes one token of every itsdangerous class, an auth ticket and an
 * access/refresh pair, then prints them with the Python snippet (Debian's python3-itsdangerous) that verifies
 * each one with the same key and salt.
 *
 *     npx tsx examples/tokens/main.ts            # prints tokens + a Python script
 *     npx tsx examples/tokens/main.ts | sed -n '/^# --- python/,$p' | tail -n +2 | command -p python3
 *
 * (`command -p python3` is the system interpreter that has Debian's python3-itsdangerous; a pyenv `python3` on PATH
 * does not see Debian's packages.)
 */
import { pathToFileURL } from 'node:url';
import { exampleFlags } from '../shared/args.js';
import {
  AuthTickets, Serializer, Signer, TimestampSigner, TokenService, URLSafeSerializer, URLSafeTimedSerializer,
  VirtualClock, systemClock,
} from '../../src/index.js';
import type { Clock } from '../../src/index.js';

/** Options of {@link main}. */
export interface TokensExampleOptions {
  /** The shared secret. Default a fixed demo key (never use a key from source code for real). */
  secretKey?: string;
  /** Signing time, epoch seconds. Default now. */
  now?: number;
  /** Where lines go. Default `console.log`. */
  print?: (line: string) => void;
}

/** What {@link main} made. */
export interface TokensExampleResult {
  /** Token per name. */
  tokens: Record<string, string>;
  /** A Python 3 script that verifies every token and prints `ok <name>` per token. */
  python: string;
}

/** Makes the tokens, prints them and the Python that verifies them. */
export async function main(options: TokensExampleOptions = {}): Promise<TokensExampleResult> {
  const key = options.secretKey ?? 'demo-secret-key-change-me-0123456789';
  const print = options.print ?? ((line: string) => console.log(line));
  const clock: Clock = options.now === undefined ? systemClock : new VirtualClock({ epochStart: options.now });

  const tokens: Record<string, string> = {};
  tokens.signer = new Signer(key).sign('my string');
  tokens.timestamp = new TimestampSigner(key, { clock }).sign('my string');
  tokens.serializer = new Serializer(key).dumps({ user: 'zoë', n: [1, 2.5] });
  tokens.urlsafe = new URLSafeSerializer(key).dumps([1, 2, 3, 4]);
  tokens.timed = new URLSafeTimedSerializer(key, { salt: 'activate', clock }).dumps({ id: 5, note: 'compress '.repeat(20) });
  tokens.ticket = new AuthTickets(key, { clock }).makeAuthTicket(42, { expiresIn: 300 });
  const service = new TokenService({ secretKeys: key, clock });
  const pair = await service.issue({ id: 42, roles: ['user', 'admin'] }, { scope: ['user'] });
  tokens.refresh = pair.refreshToken;
  await service.close();

  for (const [name, token] of Object.entries(tokens)) print(`${name.padEnd(10)} ${token}`);

  const q = (s: string) => JSON.stringify(s);
  const python = [
    'import hashlib, time',
    'import itsdangerous as i',
    `KEY = ${q(key)}`,
    `NOW = ${options.now === undefined ? 'time.time()' : String(options.now)}`,
    'time.time = lambda: NOW + 1',
    `assert i.Signer(KEY).unsign(${q(tokens.signer)}) == b"my string"; print("ok signer")`,
    `assert i.TimestampSigner(KEY).unsign(${q(tokens.timestamp)}, max_age=60) == b"my string"; print("ok timestamp")`,
    `assert i.Serializer(KEY).loads(${q(tokens.serializer)}) == {"user": "zo\\u00eb", "n": [1, 2.5]}; print("ok serializer")`,
    `assert i.URLSafeSerializer(KEY).loads(${q(tokens.urlsafe)}) == [1, 2, 3, 4]; print("ok urlsafe")`,
    `assert i.URLSafeTimedSerializer(KEY, salt="activate").loads(${q(tokens.timed)}, max_age=60)["id"] == 5; print("ok timed")`,
    `t = i.URLSafeSerializer(KEY, salt="tulipwire.auth-ticket").loads(${q(tokens.ticket)})`,
    'assert t["user_id"] == 42 and t["expires_at"] >= time.time(); print("ok ticket")',
    `r = i.URLSafeTimedSerializer(KEY, salt="tulipwire.refresh-token", signer_kwargs={"digest_method": hashlib.sha256}).loads(${q(tokens.refresh)}, max_age=30 * 24 * 3600)`,
    'assert r["account_id"] == 42 and r["generation"] == 0 and r["scope"] == ["user"]; print("ok refresh")',
  ].join('\n');
  print('# --- python (python3 with itsdangerous 2.x) ---');
  print(python);
  return { tokens, python };
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  exampleFlags('usage: npx tsx examples/tokens/main.ts', {});
  main().catch((err: unknown) => {
    console.error(err);
    process.exitCode = 1;
  });
}
