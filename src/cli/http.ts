import { CliError, type ErrorExtra } from './output.js';
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
    throw unreachable(url, err);
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
    const e = (
      body as
        { error?: { code?: unknown; message?: unknown; field?: unknown; details?: unknown } } | undefined
    )?.error;
    // the node's error shape (docs/ERRORS.md): field and details stay members of their own
    const extra: ErrorExtra = {};
    if (typeof e?.field === 'string') extra.field = e.field;
    if (e?.details !== undefined) extra.details = e.details;
    throw new CliError(
      typeof e?.code === 'string' ? e.code : `HTTP_${res.status}`,
      typeof e?.message === 'string' ? e.message : res.statusText,
      1,
      extra,
    );
  }
  return body as T;
}

/**
 * A request that got no usable answer: NODE_UNREACHABLE. Something that answered, but not in
 * HTTP (undici's parser errors, HPE_*: a libp2p port greets with multistream-select), or that
 * closed the connection without any answer (UND_ERR_SOCKET: Postgres, say, given an HTTP
 * request) is most often the wrong port, and the message says so. It stays NODE_UNREACHABLE,
 * not BAD_RESPONSE (a node's HTTP answer whose body is not JSON): no HTTP exchange took place,
 * as a --p2p address whose libp2p handshake fails is NODE_UNREACHABLE too (docs/ERRORS.md §5).
 */
function unreachable(url: URL, err: unknown): CliError {
  const cause = (err as { cause?: { code?: string } }).cause?.code ?? (err as Error).name;
  const hint = "is this the node's HTTP port (not its libp2p port)?";
  if (cause.startsWith('HPE_'))
    return new CliError('NODE_UNREACHABLE', `${url.origin} answered, but not in HTTP: ${hint} (${cause})`);
  if (cause === 'UND_ERR_SOCKET')
    return new CliError(
      'NODE_UNREACHABLE',
      `${url.origin} closed the connection without an HTTP answer: ${hint} (${cause})`,
    );
  return new CliError('NODE_UNREACHABLE', `cannot reach ${url.origin} (${cause})`);
}
