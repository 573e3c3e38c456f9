import { CliError } from './output.js';
import { MAX_TIMER_MS } from './commands/args.js';

/** A node's base URL (`--node`, or `$BITNEXUS_NODE`): http or https, else INVALID_ARGUMENT. */
export function nodeUrl(base: string): URL {
  let url: URL;
  try {
    url = new URL(base.endsWith('/') ? base : base + '/');
  } catch {
    throw new CliError('INVALID_ARGUMENT', `--node: ${JSON.stringify(base)} is not a URL (http://host:port)`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw new CliError('INVALID_ARGUMENT', `--node: ${JSON.stringify(base)} is not an http or https URL`);
  return url;
}

/** A JSON request to a node's HTTP API; API errors become CliErrors with the API's code. */
export async function api<T>(
  base: string,
  path: string,
  init: { method?: string; body?: unknown; timeoutMs?: number } = {},
): Promise<T> {
  const url = new URL(path, nodeUrl(base));
  const timeoutMs = init.timeoutMs ?? 30_000;
  // built before the request, so a bad timeout is never reported as an unreachable node
  if (!Number.isInteger(timeoutMs) || timeoutMs < 1 || timeoutMs > MAX_TIMER_MS)
    throw new CliError(
      'INVALID_ARGUMENT',
      `timeout must be between 1 and ${MAX_TIMER_MS} ms, got ${timeoutMs}`,
    );
  const req: RequestInit = { method: init.method ?? 'GET', signal: AbortSignal.timeout(timeoutMs) };
  if (init.body !== undefined) {
    req.body = JSON.stringify(init.body);
    req.headers = { 'content-type': 'application/json' };
  }
  let res: Response;
  try {
    res = await fetch(url, req);
  } catch (err) {
    const cause = (err as { cause?: { code?: string } }).cause?.code ?? (err as Error).name;
    throw new CliError('NODE_UNREACHABLE', `cannot reach ${url.origin} (${cause})`);
  }
  let text: string;
  try {
    text = await res.text();
  } catch (err) {
    const cause = (err as { cause?: { code?: string } }).cause?.code ?? (err as Error).name;
    throw new CliError('NODE_UNREACHABLE', `lost ${url.origin} while reading its answer (${cause})`);
  }
  let body: unknown;
  try {
    body = text === '' ? undefined : JSON.parse(text);
  } catch {
    throw new CliError('BAD_RESPONSE', `${url.href} answered ${res.status} with non-JSON`);
  }
  if (!res.ok) {
    const e = (body as { error?: { code?: string; message?: string; details?: unknown } } | undefined)?.error;
    const details = e?.details === undefined ? '' : ` ${JSON.stringify(e.details)}`;
    throw new CliError(e?.code ?? `HTTP_${res.status}`, `${e?.message ?? res.statusText}${details}`, 1);
  }
  return body as T;
}
