import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { format, resolveConfig } from 'prettier';
import { describe, expect, it } from 'vitest';
import { API_ERROR_CODES } from '../../../src/api/errors.js';
import { buildOpenApiDocument, openApiPath, renderOpenApiYaml, toYaml } from '../../../src/api/openapi.js';
import { ROUTES } from '../../../src/api/routes.js';
import { buildApi, routesOf } from '../../../src/api/server.js';
import {
  BLOCK_HEADER_FIELDS,
  BLOCK_HEADER_OPTIONAL_FIELDS,
  RESULT_CODES,
  VALIDATION_ERROR_CODES,
} from '../../../src/ledger/index.js';
import { BlockHeader } from '../../../src/api/schemas.js';
import { FakeNode } from './fake-node.js';

const docPath = (name: string) => fileURLToPath(new URL(`../../../docs/${name}`, import.meta.url));

interface Doc {
  paths: Record<string, Record<string, { operationId: string; responses: Record<string, unknown> }>>;
  components: { schemas: Record<string, unknown> };
}

describe('docs/openapi.yaml', () => {
  it('is the rendering of the route table (regenerate with UPDATE_OPENAPI=1)', async () => {
    const file = docPath('openapi.yaml');
    // as prettier formats it, since the repository's format check covers docs/
    const rendered = await format(renderOpenApiYaml(), { ...(await resolveConfig(file)), filepath: file });
    if (process.env.UPDATE_OPENAPI === '1') writeFileSync(file, rendered);
    expect(readFileSync(file, 'utf8')).toBe(rendered);
  });

  it('describes every route the app serves, and no other', async () => {
    const app = buildApi(await FakeNode.create(), { logger: false, metrics: null });
    await app.ready();
    const doc = buildOpenApiDocument() as unknown as Doc;
    const served = routesOf(app).map((r) => `${r.method} ${openApiPath(r.url)}`);
    const documented = Object.entries(doc.paths).flatMap(([path, ops]) =>
      Object.keys(ops).map((m) => `${m.toUpperCase()} ${path}`),
    );
    expect(served.sort()).toEqual(documented.sort());
    expect(served).toHaveLength(Object.keys(ROUTES).length);
    // and the file says so too
    const yaml = readFileSync(docPath('openapi.yaml'), 'utf8');
    for (const path of Object.keys(doc.paths)) expect(yaml).toContain(`\n  '${path}':\n`);
    await app.close();
  });

  it('resolves every $ref and documents the error shape on every operation', () => {
    const doc = buildOpenApiDocument() as unknown as Doc;
    const refs = JSON.stringify(doc).match(/#\/components\/schemas\/[A-Za-z]+/g) ?? [];
    for (const ref of refs) expect(doc.components.schemas).toHaveProperty(ref.split('/').at(-1)!);
    for (const ops of Object.values(doc.paths))
      for (const op of Object.values(ops)) expect(op.responses).toHaveProperty('500');
  });
});

describe('toYaml', () => {
  it('quotes what YAML would misread', () => {
    expect(
      toYaml({ a: 'yes', b: '200', c: 'x: y', '200': true, d: [], e: {}, f: null, g: 'plain text' }),
    ).toBe('"200": true\na: "yes"\nb: "200"\nc: "x: y"\nd: []\ne: {}\nf: null\ng: plain text\n');
    expect(toYaml({ list: [{ a: 1, b: [1, 2] }, 'x'] })).toBe('list:\n- a: 1\n  b:\n  - 1\n  - 2\n- x\n');
  });
});

describe('docs/ERRORS.md and docs/API.md', () => {
  const errors = readFileSync(docPath('ERRORS.md'), 'utf8');
  const api = readFileSync(docPath('API.md'), 'utf8');

  it('ERRORS.md explains every API error code, validation code and receipt code', () => {
    for (const code of [...API_ERROR_CODES, ...VALIDATION_ERROR_CODES, ...RESULT_CODES])
      expect(errors, code).toMatch(new RegExp(`\\|\\s*\`${code}\``));
  });

  it('API.md covers every route', () => {
    for (const spec of Object.values(ROUTES)) expect(api, spec.url).toContain(`${spec.method} ${spec.url}`);
  });
});

describe('the block header schema', () => {
  it('names exactly the fields the ledger parses', () => {
    const props = Object.keys((BlockHeader as { properties: Record<string, unknown> }).properties).sort();
    expect(props).toEqual([...BLOCK_HEADER_FIELDS, ...BLOCK_HEADER_OPTIONAL_FIELDS].sort());
  });
});
