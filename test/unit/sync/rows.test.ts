import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isoTime } from '../../../src/sync/rows.js';

describe('isoTime', () => {
  it('is Date.prototype.toISOString, in any order of calls (its per-second cache never leaks)', () => {
    const time = fc.oneof(
      fc.integer({ min: 0, max: 253_402_300_799_999 }),
      // runs within one second and across its edges, as a batch's transactions are
      fc.integer({ min: 1_700_000_000_000, max: 1_700_000_003_000 }),
      fc.constantFrom(0, 999, 1000, 1001, 253_402_300_799_999, 253_402_300_800_000, -1, -1000, 1.5),
    );
    fc.assert(
      fc.property(fc.array(time, { minLength: 1, maxLength: 50 }), (times) => {
        for (const ms of times) expect(isoTime(ms)).toBe(new Date(ms).toISOString());
      }),
      { numRuns: 500 },
    );
  });
});
