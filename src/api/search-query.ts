import type { CommissionStatus } from '../ledger/index.js';
import type { SearchFilters, SearchRequest } from '../sync/index.js';
import { ApiError } from './errors.js';
import { ISO_DATE_RE, searchQuery, UNIX_MS_RE } from './schemas.js';

/**
 * GET /v1/search: the validated query string (schemas.ts `searchQuery`) as
 * the sync layer's SearchRequest. The schema has checked every pattern;
 * this only converts (status lists, times) and checks what a pattern cannot
 * (calendar dates, times the mirror can hold).
 */
export interface SearchQuery {
  q: string;
  k: number;
  merchant?: string;
  affiliate?: string;
  /** one entry per occurrence of the parameter, each possibly comma-separated */
  status?: string[];
  currency?: string;
  from?: string;
  to?: string;
  minAmount?: string;
  maxAmount?: string;
}

/**
 * The times a filter may name: those Postgres' timestamptz stores and the
 * mirror can compare with, 0001-01-01T00:00:00Z to 9999-12-31T23:59:59.999Z
 * (the sync layer's TIME_RANGE_MS; years 0 and past 9999 are refused there too).
 */
const MIN_TIME_MS = -62_135_596_800_000;
const MAX_TIME_MS = 253_402_300_799_999;
const TIME_RANGE = 'outside the dates the mirror can hold (0001-01-01 to 9999-12-31 UTC)';

const DAYS_IN_MONTH = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

function badTime(field: string, value: string, why: string): ApiError {
  return new ApiError('BAD_REQUEST', `${field} ${JSON.stringify(value)}: ${why}`, {
    field: `querystring.${field}`,
  });
}

/**
 * Unix ms, or ISO 8601: a date (UTC midnight) or a date-time with a zone.
 * Stricter than Date.parse, which rolls 2023-02-30 over into March and reads
 * a zone-less time in the server's local zone.
 */
export function parseTime(value: string, field: string): number {
  if (UNIX_MS_RE.test(value)) {
    const ms = Number(value);
    if (ms > MAX_TIME_MS) throw badTime(field, value, TIME_RANGE);
    return ms;
  }
  const m = ISO_DATE_RE.exec(value);
  if (m === null) throw badTime(field, value, 'not Unix ms or an ISO 8601 date');
  const [, y, mo, d, h = '0', mi = '0', s = '0', frac = '', zone = 'Z'] = m;
  const [year, month, day, hour, minute, second] = [y, mo, d, h, mi, s].map(Number) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  const leap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
  const monthDays = month === 2 && !leap ? 28 : DAYS_IN_MONTH[month - 1];
  if (monthDays === undefined || day < 1 || day > monthDays) throw badTime(field, value, 'no such date');
  if (hour > 23 || minute > 59 || second > 59) throw badTime(field, value, 'no such time of day');
  let offsetMinutes = 0;
  if (zone.toUpperCase() !== 'Z') {
    const digits = zone.slice(1).replace(':', '');
    const oh = Number(digits.slice(0, 2));
    const om = Number(digits.slice(2));
    if (oh > 23 || om > 59) throw badTime(field, value, 'no such zone offset');
    offsetMinutes = (zone.startsWith('-') ? -1 : 1) * (oh * 60 + om);
  }
  const ms = Number(frac.padEnd(3, '0').slice(0, 3));
  // Date.UTC maps years 0–99 to 1900–1999; setUTCFullYear does not.
  const date = new Date(Date.UTC(2000, month - 1, day, hour, minute, second, ms));
  date.setUTCFullYear(year);
  const time = date.getTime() - offsetMinutes * 60_000;
  if (!(time >= MIN_TIME_MS && time <= MAX_TIME_MS)) throw badTime(field, value, TIME_RANGE);
  return time;
}

/** `status=pending&status=approved,voided` → ['pending', 'approved', 'voided'] */
function statuses(values: readonly string[]): CommissionStatus[] {
  const out = new Set<CommissionStatus>();
  for (const value of values) for (const s of value.split(',')) out.add(s as CommissionStatus); // the schema's pattern allows only statuses
  return [...out];
}

const KNOWN = new Set(Object.keys((searchQuery as { properties: object }).properties));

/**
 * The server's validator drops unknown query parameters silently (fastify's
 * removeAdditional). For a search that would turn a misspelt filter
 * (`min_amount=`) into no filter at all, so this route refuses them.
 */
export function checkSearchParameters(url: string): void {
  const search = url.indexOf('?') < 0 ? '' : url.slice(url.indexOf('?') + 1);
  for (const name of new URLSearchParams(search).keys())
    if (!KNOWN.has(name))
      throw new ApiError('BAD_REQUEST', `unknown query parameter ${JSON.stringify(name)}`, {
        field: `querystring.${name}`,
      });
}

export function searchRequest(query: SearchQuery): SearchRequest {
  const filters: SearchFilters = {};
  if (query.merchant !== undefined) filters.merchant = query.merchant;
  if (query.affiliate !== undefined) filters.affiliate = query.affiliate;
  if (query.status !== undefined) filters.status = statuses(query.status);
  if (query.currency !== undefined) filters.currency = query.currency;
  if (query.from !== undefined) filters.from = parseTime(query.from, 'from');
  if (query.to !== undefined) filters.to = parseTime(query.to, 'to');
  if (query.minAmount !== undefined) filters.minAmount = query.minAmount;
  if (query.maxAmount !== undefined) filters.maxAmount = query.maxAmount;
  return { q: query.q, k: query.k, filters };
}
