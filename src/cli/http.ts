import { CliError } from './output.js';

/** A JSON request to a node's HTTP API; API errors become CliErrors with the API's code. */
export async function api<T>(
  base: string,
  path: string,
  init: { method?: string; body?: unknown; timeoutMs?: number } = {},
): Promise<T> {
  const url = new URL(path, base.endsWith('/') ? base : base + '/');
  let res: Response;
  try {
    const req: RequestInit = {
      method: init.method ?? 'GET',
      signal: AbortSignal.timeout(init.timeoutMs ?? 30_000),
    };
    if (init.body !== undefined) {
      req.body = JSON.stringify(init.body);
      req.headers = { 'content-type': 'application/json' };
    }
    res = await fetch(url, req);
  } catch (err) {
    const cause = (err as { cause?: { code?: string } }).cause?.code ?? (err as Error).name;
    throw new CliError('NODE_UNREACHABLE', `cannot reach ${url.origin} (${cause})`);
  }
  const text = await res.text();
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
