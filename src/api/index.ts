// api/: the HTTP API of a node (fastify): routes, schemas, the error-code registry, metrics.
export { buildApi, routesOf, DEFAULT_BODY_LIMIT, type ApiOptions } from './server.js';
export {
  ApiError,
  API_ERROR_CODES,
  HTTP_STATUS,
  mapError,
  rejected,
  type ApiErrorCode,
  type ApiErrorOptions,
  type ErrorBody,
} from './errors.js';
export { createPromMetrics, type NodeMetrics, type PromMetricsOptions } from './metrics.js';
export { buildOpenApiDocument, renderOpenApiYaml } from './openapi.js';
export { ROUTES, type RouteSpec } from './routes.js';
export type * from './node-api.js';
