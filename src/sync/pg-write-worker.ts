import { parentPort, workerData } from 'node:worker_threads';
import { SyncError } from './errors.js';
import { PostgresTarget, type PostgresTargetOptions } from './pg-target.js';
import { runPlan, type BatchPlan } from './writer.js';
import type { WriteReply, WriteRequest } from './pg-write-protocol.js';

/**
 * The Postgres target's write thread (PostgresTarget.writePlan): one
 * connection of its own, and an event loop that is free to feed COPY data to
 * the socket and send each next statement the moment Postgres answers,
 * whatever the sink's thread is computing meanwhile.
 */
const target = new PostgresTarget({
  ...(workerData as PostgresTargetOptions),
  maxConnections: 1,
  writeThread: false,
});
const port = parentPort!;

port.on('message', (msg: WriteRequest) => {
  if (msg.type === 'close') {
    void target.close().finally(() => port.close());
    return;
  }
  void write(msg.id, msg.plan);
});

async function write(id: number, plan: BatchPlan): Promise<void> {
  let reply: WriteReply;
  try {
    reply = { id, rows: await target.transaction((tx) => runPlan(tx, plan)) };
  } catch (err) {
    reply = { id, error: describe(err) };
  }
  port.postMessage(reply);
}

function describe(err: unknown): NonNullable<WriteReply['error']> {
  if (err instanceof SyncError) {
    return {
      sync: true,
      code: err.code,
      message: err.message.slice(err.code.length + 2),
      details: err.details,
    };
  }
  const e = err as { message?: unknown; code?: unknown } | null;
  return {
    sync: false,
    message: typeof e?.message === 'string' ? e.message : String(err),
    ...(typeof e?.code === 'string' ? { code: e.code } : {}),
  };
}
