import { HTTP_STATUS, type ApiErrorCode } from './errors.js';
import { COMMON_ERRORS, ROUTES, type RouteSpec } from './routes.js';
import { COMPONENTS, type JsonSchema } from './schemas.js';

/**
 * The OpenAPI 3.1 document of the API, rendered from the route table and the
 * shared schemas. docs/openapi.yaml is this document as YAML; a unit test
 * fails when the file is stale (regenerate: UPDATE_OPENAPI=1 npx vitest run
 * test/unit/api/openapi.test.ts).
 */
export const API_VERSION = '1.0.0';

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

const componentNames = new Map<unknown, string>(Object.entries(COMPONENTS).map(([name, s]) => [s, name]));

/** Deep copy with every named schema (other than the root) replaced by a $ref. */
function withRefs(value: unknown, root?: unknown): Json {
  if (value !== root) {
    const name = componentNames.get(value);
    if (name !== undefined) return { $ref: `#/components/schemas/${name}` };
  }
  if (Array.isArray(value)) return value.map((v) => withRefs(v));
  if (typeof value === 'object' && value !== null) {
    const out: { [key: string]: Json } = {};
    for (const [k, v] of Object.entries(value)) if (v !== undefined) out[k] = withRefs(v);
    return out;
  }
  return value as Json;
}

/** `/v1/blocks/:height` → `/v1/blocks/{height}` */
export function openApiPath(url: string): string {
  return url.replace(/:([A-Za-z0-9_]+)/g, '{$1}');
}

function parameters(spec: RouteSpec): Json[] {
  const out: Json[] = [];
  const parts: [keyof RouteSpec['schema'], string][] = [
    ['params', 'path'],
    ['querystring', 'query'],
    ['headers', 'header'],
  ];
  for (const [part, where] of parts) {
    const schema = spec.schema[part] as
      { properties?: Record<string, JsonSchema>; required?: string[] } | undefined;
    if (schema?.properties === undefined) continue;
    for (const [name, prop] of Object.entries(schema.properties)) {
      const { description, ...rest } = prop as { description?: string } & JsonSchema;
      const param: { [key: string]: Json } = { name, in: where };
      if (description !== undefined) param.description = description;
      param.required = where === 'path' || (schema.required ?? []).includes(name);
      param.schema = withRefs(rest);
      out.push(param);
    }
  }
  return out;
}

function errorResponses(codes: readonly ApiErrorCode[]): Record<string, Json> {
  const byStatus = new Map<number, ApiErrorCode[]>();
  for (const code of [...codes, ...COMMON_ERRORS]) {
    const status = HTTP_STATUS[code];
    const list = byStatus.get(status) ?? [];
    if (!list.includes(code)) list.push(code);
    byStatus.set(status, list);
  }
  const out: Record<string, Json> = {};
  for (const [status, list] of [...byStatus].sort((a, b) => a[0] - b[0])) {
    out[String(status)] = {
      description: `error: ${list.join(', ')}`,
      content: { 'application/json': { schema: { $ref: '#/components/schemas/ErrorResponse' } } },
    };
  }
  return out;
}

function operation(spec: RouteSpec): Json {
  const op: { [key: string]: Json } = {
    operationId: spec.operationId,
    tags: [spec.tag],
    summary: spec.summary,
  };
  if (spec.description !== undefined) op.description = spec.description;
  const params = parameters(spec);
  if (params.length > 0) op.parameters = params;
  if (spec.schema.body !== undefined) {
    op.requestBody = {
      required: true,
      content: { 'application/json': { schema: withRefs(spec.docs?.requestBody ?? spec.schema.body) } },
    };
  }
  const responses: Record<string, Json> = {};
  for (const [status, schema] of Object.entries(spec.schema.response)) {
    responses[status] = {
      description: spec.replies[status] ?? 'success',
      content: { 'application/json': { schema: withRefs(schema) } },
    };
  }
  for (const [status, doc] of Object.entries(spec.docs?.responses ?? {})) {
    responses[status] = {
      description: doc.description,
      content: { [doc.mediaType]: { schema: withRefs(doc.schema) } },
    };
  }
  for (const [status, response] of Object.entries(errorResponses(spec.errors)))
    responses[status] ??= response;
  op.responses = responses;
  return op;
}

export function buildOpenApiDocument(): Json {
  const paths: Record<string, Record<string, Json>> = {};
  for (const spec of Object.values(ROUTES) as RouteSpec[]) {
    const path = openApiPath(spec.url);
    (paths[path] ??= {})[spec.method.toLowerCase()] = operation(spec);
  }
  const schemas: Record<string, Json> = {};
  for (const [name, schema] of Object.entries(COMPONENTS)) schemas[name] = withRefs(schema, schema);
  return {
    openapi: '3.1.0',
    info: {
      title: 'BitNexus Ledger node API',
      version: API_VERSION,
      description:
        'HTTP API of one BitNexus Ledger node. Every error has the shape of ErrorResponse; codes are listed in ' +
        'docs/ERRORS.md. Byte formats of transactions, blocks and receipts: docs/FORMAT.md.',
    },
    tags: [
      { name: 'transactions', description: 'submit signed transactions, read them back with receipts' },
      { name: 'chain', description: 'committed blocks' },
      { name: 'state', description: 'participants and balances' },
      { name: 'search', description: 'commissions by text and meaning, from the Postgres/pgvector mirror' },
      {
        name: 'sync',
        description: 'the Postgres/pgvector mirror of the chain: status and consistency check',
      },
      { name: 'events', description: 'committed blocks as they happen (SSE)' },
      { name: 'operations', description: 'status, health, readiness, metrics' },
      { name: 'admin', description: 'operator-signed requests' },
    ],
    paths,
    components: { schemas },
  };
}

// --- a small YAML emitter (block style; strings quoted unless plainly safe) ---

const PLAIN = /^[A-Za-z][A-Za-z0-9 _.,()/+'-]*$/;
const RESERVED = /^(true|false|null|yes|no|on|off|y|n|~)$/i;

function scalar(value: Json): string {
  if (value === null) return 'null';
  if (typeof value === 'string') {
    return PLAIN.test(value) && !RESERVED.test(value) && !value.endsWith(' ') ? value : JSON.stringify(value);
  }
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  return JSON.stringify(value);
}

function key(k: string): string {
  return /^[A-Za-z_$][A-Za-z0-9_$.-]*$/.test(k) && !RESERVED.test(k) ? k : JSON.stringify(k);
}

function isEmpty(value: Json): boolean {
  return Array.isArray(value)
    ? value.length === 0
    : typeof value === 'object' && value !== null && Object.keys(value).length === 0;
}

function emit(value: Json, indent: string, lines: string[]): void {
  if (Array.isArray(value)) {
    for (const item of value) {
      if (typeof item === 'object' && item !== null && !isEmpty(item)) {
        const sub: string[] = [];
        emit(item, indent + '  ', sub);
        lines.push(`${indent}- ${sub[0]!.trimStart()}`, ...sub.slice(1));
      } else {
        lines.push(`${indent}- ${isEmpty(item) ? (Array.isArray(item) ? '[]' : '{}') : scalar(item)}`);
      }
    }
    return;
  }
  if (typeof value === 'object' && value !== null) {
    for (const [k, v] of Object.entries(value)) {
      if (typeof v === 'object' && v !== null && !isEmpty(v)) {
        lines.push(`${indent}${key(k)}:`);
        emit(v, Array.isArray(v) ? indent : indent + '  ', lines);
      } else {
        lines.push(`${indent}${key(k)}: ${isEmpty(v) ? (Array.isArray(v) ? '[]' : '{}') : scalar(v)}`);
      }
    }
    return;
  }
  lines.push(indent + scalar(value));
}

export function toYaml(value: Json): string {
  const lines: string[] = [];
  emit(value, '', lines);
  return lines.join('\n') + '\n';
}

export function renderOpenApiYaml(): string {
  return (
    '# Generated from src/api/routes.ts and src/api/schemas.ts (src/api/openapi.ts). Do not edit by hand:\n' +
    '# UPDATE_OPENAPI=1 npx vitest run test/unit/api/openapi.test.ts\n' +
    toYaml(buildOpenApiDocument())
  );
}
