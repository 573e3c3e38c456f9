import { describe, expect, it } from 'vitest';
import { jsonByteLength } from '../../../src/api/json-size.js';
import { FakeNode } from './fake-node.js';

describe('jsonByteLength', () => {
  it('is the UTF-8 length of JSON.stringify', async () => {
    const values: unknown[] = [
      'plain',
      '',
      'quote " backslash \\ newline \n tab \t nul \u0000 unit \u001f del \u007f',
      'héllo € 𝄞',
      'lone \ud800 high',
      'lone \udc00 low',
      0,
      -0,
      1.5,
      -1e21,
      1e-7,
      Number.NaN,
      Number.POSITIVE_INFINITY,
      true,
      false,
      null,
      [],
      {},
      [1, undefined, () => 1, 'x', [[], [{}]]],
      { a: undefined, f: () => 1, b: 1, 'k"ey': 'v', nested: { list: [null, { ü: 'ö' }] } },
    ];
    for (const v of values)
      expect(jsonByteLength(v), JSON.stringify(v)).toBe(Buffer.byteLength(JSON.stringify(v)));
    const node = await FakeNode.create();
    for (const { block } of node.blocks)
      expect(jsonByteLength(block)).toBe(Buffer.byteLength(JSON.stringify(block)));
  });
});
