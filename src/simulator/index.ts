// simulator/: deterministic whole-cluster simulation of the Raft core (docs/SIMULATOR.md).
// Seeded randomness, virtual ticks, a faulty network, crashes that keep only what
// was persisted, membership changes and compaction; Raft's safety properties are
// checked after every step, liveness once the faults stop, and client histories
// for linearizability.
export { runSimulation, replayCommand, type SimConfig, type SimResult, type SimStats } from './simulation.js';
export { explainFailure, summarize, nodesForSeed } from './report.js';
export { Prng, deriveSeed } from './prng.js';
export { SimNetwork, CALM_NETWORK, type NetworkFaults, type Envelope } from './network.js';
export { checkLinearizable, type Model, type Operation, type CheckResult } from './linearizability.js';
export { kvModel, describeKvOperation, type KvInput, type KvOutput, type KvOperation } from './kv-model.js';
export { SafetyChecker } from './safety.js';
export { SimViolation, SAFETY_KINDS, type ViolationKind } from './violation.js';
export type { Schedule, RunParams } from './params.js';
