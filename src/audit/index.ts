// audit/: the auditor's checks. Reads stores, never writes them.
export { verifyChain, type VerifyReport, type VerifyFailure, type VerifyOptions } from './verify.js';
export {
  defaultSignatureThreads,
  SignaturePool,
  type SignatureJob,
  type SignaturePoolOptions,
} from './signature-pool.js';
