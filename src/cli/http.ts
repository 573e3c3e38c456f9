import { request as httpRequest, type ClientRequest, type OutgoingHttpHeaders } from 'node:http';
import { request as httpsRequest } from 'node:https';
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

/**
 * A JSON request to a node's HTTP API; API errors become CliErrors with the API's code.
 *
 * It goes through node:http(s) itself, not the global fetch: Node's bundled undici gives up on
 * an answer whose headers, or the gap between two pieces of its body, take longer than 300 s
 * (its headersTimeout and bodyTimeout, which the CLI cannot set), whatever the CLI's own
 * timeout. Here `timeoutMs` (default 30 s) is the only limit, one deadline for connecting,
 * the headers and the whole body: `sync check --timeout 600000` waits the 10 minutes it asks
 * for. One connection per request (no keep-alive pool), and redirects are not followed (a
 * node's API never redirects; a 3xx is an HTTP_3xx error like any other status).
 */
export async function api<T>(
  base: string,
  path: string,
  init: { method?: string; body?: unknown; timeoutMs?: number } = {},
): Promise<T> {
  const url = new URL(path, nodeUrl(base));
  const timeoutMs = init.timeoutMs ?? 30_000;
  // checked before the request, so a bad timeout is never reported as an unreachable node
  if (!Number.isInteger(timeoutMs) || timeoutMs < 1 || timeoutMs > MAX_TIMER_MS)
    throw new CliError(
      'INVALID_ARGUMENT',
      `timeout must be between 1 and ${MAX_TIMER_MS} ms, got ${timeoutMs}`,
    );
  const res = await exchange(
    url,
    init.method ?? 'GET',
    init.body === undefined ? undefined : JSON.stringify(init.body),
    timeoutMs,
  );
  let body: unknown;
  try {
    body = res.text === '' ? undefined : JSON.parse(res.text);
  } catch {
    throw new CliError('BAD_RESPONSE', `${url.href} answered ${res.status} with non-JSON`);
  }
  if (res.status < 200 || res.status > 299) {
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

/** A node's whole answer: its status line and its body, decoded as UTF-8. */
interface Answer {
  status: number;
  statusText: string;
  text: string;
}

/**
 * One HTTP exchange, with `timeoutMs` as its one deadline. Whatever goes wrong is a CliError:
 * before the answer's headers, `unreachable`; after them, the connection lost mid-answer.
 */
function exchange(url: URL, method: string, body: string | undefined, timeoutMs: number): Promise<Answer> {
  return new Promise<Answer>((resolve, reject) => {
    let answered = false;
    let settled = false;
    const fail = (cause: string): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      req?.destroy();
      reject(
        answered
          ? new CliError('NODE_UNREACHABLE', `lost ${url.origin} while reading its answer (${cause})`)
          : unreachable(url, cause),
      );
    };
    const headers: OutgoingHttpHeaders = {};
    if (body !== undefined) {
      headers['content-type'] = 'application/json';
      headers['content-length'] = Buffer.byteLength(body);
    }
    // the deadline runs from here: looking up the host and connecting count against it too
    const timer = setTimeout(() => fail('TimeoutError'), timeoutMs); // fetch's name for its timeout
    let req: ClientRequest | undefined;
    try {
      req = (url.protocol === 'https:' ? httpsRequest : httpRequest)(
        url,
        // agent: false: a connection of its own, closed after the answer, so nothing is left to
        // keep the process alive and no request meets a kept-alive socket the node has closed
        { method, headers, agent: false },
        (res) => {
          answered = true;
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.on('end', () => {
            if (settled) return;
            settled = true;
            clearTimeout(timer);
            resolve({
              status: res.statusCode ?? 0,
              statusText: res.statusMessage ?? '',
              // as fetch's text(): UTF-8, a byte-order mark dropped, bad bytes replaced
              text: new TextDecoder().decode(Buffer.concat(chunks)),
            });
          });
          // the connection went away mid-body: the request's own 'error' (a reset, a parser
          // error) comes first and names the cause; a plain close shows only here, as 'aborted'
          res.on('error', (err) => fail(causeOf(err)));
          res.on('close', () => {
            if (!res.complete) fail(CLOSED);
          });
        },
      );
    } catch (err) {
      fail(causeOf(err));
      return;
    }
    req.on('error', (err) => fail(causeOf(err)));
    req.end(body);
  });
}

/**
 * The connection closed without a (whole) answer. undici calls this UND_ERR_SOCKET, as the
 * messages (and docs/ERRORS.md) have always said; node:http calls it ECONNRESET 'socket hang
 * up' (before the headers) or 'aborted' (mid-body), errors without a syscall — unlike a real
 * reset from the peer (ECONNRESET from `read`), which keeps its own name.
 */
const CLOSED = 'UND_ERR_SOCKET';

/** What went wrong, as a short name for the message: an error code, else the error's name. */
function causeOf(err: unknown): string {
  const e = err as { code?: unknown; syscall?: unknown; name?: unknown; errors?: { code?: unknown }[] };
  if (e.code === 'ECONNRESET' && e.syscall === undefined) return CLOSED;
  // every address of a host refused (Happy Eyeballs): an AggregateError, named by its first
  const code = e.code ?? e.errors?.[0]?.code;
  if (typeof code === 'string') return code;
  return typeof e.name === 'string' ? e.name : 'Error';
}

/**
 * A request that got no usable answer: NODE_UNREACHABLE. Something that answered, but not in
 * HTTP (HTTP parser errors, HPE_*: a libp2p port greets with multistream-select), or that
 * closed the connection without any answer (UND_ERR_SOCKET: Postgres, say, given an HTTP
 * request) is most often the wrong port, and the message says so. It stays NODE_UNREACHABLE,
 * not BAD_RESPONSE (a node's HTTP answer whose body is not JSON): no HTTP exchange took place,
 * as a --p2p address whose libp2p handshake fails is NODE_UNREACHABLE too (docs/ERRORS.md §5).
 */
function unreachable(url: URL, cause: string): CliError {
  const hint = "is this the node's HTTP port (not its libp2p port)?";
  if (cause.startsWith('HPE_'))
    return new CliError('NODE_UNREACHABLE', `${url.origin} answered, but not in HTTP: ${hint} (${cause})`);
  if (cause === CLOSED)
    return new CliError(
      'NODE_UNREACHABLE',
      `${url.origin} closed the connection without an HTTP answer: ${hint} (${cause})`,
    );
  return new CliError('NODE_UNREACHABLE', `cannot reach ${url.origin} (${cause})`);
}
