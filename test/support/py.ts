/**
 * Runs snippets in Debian's Python (`command -p python3`, which has python3-itsdangerous), for interop tests.
 *
 * ```ts
 * const out = await runPython('import itsdangerous,sys; print(itsdangerous.Signer(sys.argv[1]).sign("x").decode())', ['key']);
 * ```
 */
import { execFile } from 'node:child_process';

/** What a Python run printed. */
export interface PythonResult {
  stdout: string;
  stderr: string;
}

/**
 * Runs `code` with `python3 -c`, found on the default system PATH (`command -p`), never a pyenv shim.
 * `args` become `sys.argv[1:]`; `input` is written to stdin. Rejects with stderr when Python exits non-zero.
 */
export function runPython(code: string, args: readonly string[] = [], input?: string): Promise<PythonResult> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      'sh',
      ['-c', 'P=$(command -p -v python3) && exec "$P" -c "$0" "$@"', code, ...args],
      { timeout: 20_000, maxBuffer: 16 * 1024 * 1024, env: { ...process.env, PYTHONIOENCODING: 'utf-8', PYTHONDONTWRITEBYTECODE: '1' } },
      (err, stdout, stderr) => {
        if (err) reject(new Error(`python failed: ${err.message}\n${stderr}`));
        else resolve({ stdout, stderr });
      },
    );
    if (input !== undefined) child.stdin?.end(input);
    else child.stdin?.end();
  });
}

/** Runs `code` with a JSON value on stdin (`json.load(sys.stdin)`) and parses the JSON it prints. */
export async function pythonJson<T = unknown>(code: string, input: unknown): Promise<T> {
  const { stdout } = await runPython(code, [], JSON.stringify(input));
  return JSON.parse(stdout) as T;
}
