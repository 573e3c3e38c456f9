/**
 * The URL of a worker script that lives at `src/<dirAndName>.ts`, for a caller
 * in another file under `src/<dir>/`. Compiled, both sit in `dist/src/`; under
 * vitest the caller is TypeScript source, so the build output is used (npm
 * test builds before it runs the tests).
 */
export function workerScript(callerUrl: string, dirAndName: string): URL {
  return callerUrl.endsWith('.ts')
    ? new URL(`../../dist/src/${dirAndName}.js`, callerUrl)
    : new URL(`../${dirAndName}.js`, callerUrl);
}
