#!/usr/bin/env node
// graphile-worker throughput baseline for the mc-engine queue bench (see README.md).
//
//   node run.mjs --database-url postgres://postgres@127.0.0.1:5432/DB --jobs N \
//                --mode default|batched --processes 1|2 [--concurrency C] [--chunk K]
//
// Installs graphile-worker's schema in the given (fresh) database, enqueues N no-op jobs with
// `graphile_worker.add_jobs` in chunks of K (timed), then drains them with worker processes
// (children of this script; this process only coordinates and polls) and prints one line of
// JSON on stdout. Everything else (progress, warnings, errors) goes to stderr. Exits non-zero
// on any error and gives up after 10 minutes.

import { fork } from "node:child_process";
import { EventEmitter } from "node:events";
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

import { Logger, makeWorkerUtils, run } from "graphile-worker";

const HERE = dirname(fileURLToPath(import.meta.url));
const SCHEMA = "graphile_worker";
const TASK = "noop";
const DEADLINE_MS = 10 * 60 * 1000;
const VERSION = JSON.parse(
  readFileSync(join(HERE, "node_modules/graphile-worker/package.json"), "utf8"),
).version;

// Per-process worker configuration for each mode.
//
// default: graphile-worker's defaults (pool of 10 connections, 2 s poll interval, one
//   database round trip to fetch and one to complete each job) except the concurrency:
//   0.17.x defaults `concurrentJobs` to 1, which nobody runs in production, so we use 10,
//   the size of its default connection pool.
// batched: the configuration graphile-worker's performance page
//   (https://worker.graphile.org/docs/performance) uses for its headline numbers: 24
//   concurrent jobs, a pool of 25, a local queue that fetches and locks 500 jobs per query,
//   and batched completion/failure (flushed on the next tick).
function workerPreset(mode, concurrency) {
  if (mode === "default") {
    return { schema: SCHEMA, concurrentJobs: concurrency ?? 10 };
  }
  const c = concurrency ?? 24;
  return {
    schema: SCHEMA,
    concurrentJobs: c,
    maxPoolSize: c + 1,
    localQueue: { size: 500 },
    completeJobBatchDelay: 0,
    failJobBatchDelay: 0,
  };
}

// graphile-worker logs every completed job at info level; keep warnings and errors only.
const quietLogger = new Logger((scope) => (level, message) => {
  if (level === "error" || level === "warning") {
    process.stderr.write(`[graphile-worker ${scope.label ?? "core"}] ${level}: ${message}\n`);
  }
});

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function usage() {
  return (
    "usage: node run.mjs --database-url postgres://USER@HOST:PORT/DB --jobs N " +
    "--mode default|batched --processes 1|2 [--concurrency C] [--chunk K]"
  );
}

function parseCli() {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        "database-url": { type: "string" },
        jobs: { type: "string" },
        mode: { type: "string" },
        processes: { type: "string", default: "1" },
        concurrency: { type: "string" },
        chunk: { type: "string", default: "1000" },
        worker: { type: "boolean", default: false }, // internal: run as a worker child
        help: { type: "boolean", short: "h", default: false },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (e) {
    throw new Error(`${e.message}\n${usage()}`);
  }
  if (values.help) {
    process.stdout.write(usage() + "\n");
    process.exit(0);
  }
  const int = (name, min, max) => {
    const raw = values[name];
    if (raw === undefined) return undefined;
    const n = Number(raw);
    if (!Number.isInteger(n) || n < min || n > max) {
      throw new Error(`--${name} must be an integer in ${min}..${max}, got ${JSON.stringify(raw)}`);
    }
    return n;
  };
  const url = values["database-url"];
  if (!url) throw new Error(`--database-url is required\n${usage()}`);
  if (!/^postgres(ql)?:\/\//.test(url)) throw new Error(`--database-url must be a postgres:// URL`);
  if (values.mode !== "default" && values.mode !== "batched") {
    throw new Error(`--mode must be "default" or "batched"\n${usage()}`);
  }
  const jobs = int("jobs", 1, 100_000_000);
  if (jobs === undefined && !values.worker) throw new Error(`--jobs is required\n${usage()}`);
  return {
    url,
    jobs,
    mode: values.mode,
    processes: int("processes", 1, 2),
    concurrency: int("concurrency", 1, 1000),
    chunk: int("chunk", 1, 100_000),
    worker: values.worker,
  };
}

// ---------------------------------------------------------------------------------------------
// Worker child: load everything, report ready, start the runner on "go", report completions.

async function workerMain(args) {
  if (!process.send) throw new Error("--worker is internal: it needs an IPC channel to its parent");
  const send = (msg) => {
    try {
      process.send(msg);
    } catch {
      process.exit(1); // parent gone
    }
  };
  const die = (message) => {
    send({ type: "fatal", message });
    setTimeout(() => process.exit(1), 100);
  };
  process.on("disconnect", () => process.exit(1)); // never outlive the coordinator
  process.on("uncaughtException", (e) => die(`uncaught exception: ${e?.stack ?? e}`));
  process.on("unhandledRejection", (e) => die(`unhandled rejection: ${e?.stack ?? e}`));

  const events = new EventEmitter();
  let done = 0;
  let reported = 0;
  events.on("job:success", () => {
    done++;
  });
  events.on("job:error", ({ job, error }) =>
    die(`job ${job.id} failed: ${error?.message ?? error}`),
  );
  events.on("worker:fatalError", ({ error }) => die(`worker fatal error: ${error?.message ?? error}`));
  events.on("pool:fatalError", ({ error }) => die(`pool fatal error: ${error?.message ?? error}`));

  let runner;
  const progress = setInterval(() => {
    if (done !== reported) {
      reported = done;
      send({ type: "progress", done });
    }
  }, 20);

  process.on("message", async (msg) => {
    try {
      if (msg?.type === "go") {
        runner = await run({
          connectionString: args.url,
          taskList: { [TASK]: async () => {} },
          parsedCronItems: [],
          logger: quietLogger,
          events,
          noHandleSignals: true,
          preset: { worker: workerPreset(args.mode, args.concurrency) },
        });
        runner.promise.catch((e) => die(`runner stopped: ${e?.message ?? e}`));
        send({ type: "started" });
      } else if (msg?.type === "stop") {
        if (runner) await runner.stop();
        clearInterval(progress);
        process.send({ type: "progress", done }, () => process.exit(0));
      }
    } catch (e) {
      die(`${msg?.type ?? "message"}: ${e?.message ?? e}`);
    }
  });
  send({ type: "ready" });
}

// ---------------------------------------------------------------------------------------------
// Coordinator.

const children = [];

function fail(message) {
  process.stderr.write(`run.mjs: error: ${message}\n`);
  for (const c of children) {
    if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
  }
  process.exit(1);
}

async function coordinatorMain(args) {
  const deadline = setTimeout(
    () => fail(`gave up after ${DEADLINE_MS / 60000} minutes`),
    DEADLINE_MS,
  );
  const log = (s) => process.stderr.write(`run.mjs: ${s}\n`);

  const utils = await makeWorkerUtils({
    connectionString: args.url,
    schema: SCHEMA,
    logger: quietLogger,
  });
  const q = (text, values) => utils.withPgClient((c) => c.query(text, values));
  const count = async () =>
    (await q(`select count(*)::int as n from ${SCHEMA}._private_jobs`)).rows[0].n;

  // 1. Schema.
  await utils.migrate();
  const before = await count();
  if (before !== 0) {
    throw new Error(`database is not fresh: ${SCHEMA}._private_jobs already holds ${before} jobs`);
  }

  // 2. Enqueue, `chunk` jobs per add_jobs call (one statement, autocommit, per chunk).
  const payload = (n) => JSON.stringify(Array.from({ length: n }, () => ({ identifier: TASK, payload: {} })));
  const addJobs =
    `select count(*)::int as n from ${SCHEMA}.add_jobs(` +
    `array(select json_populate_recordset(null::${SCHEMA}.job_spec, $1::json)))`;
  const enqueueStart = performance.now();
  await utils.withPgClient(async (client) => {
    for (let left = args.jobs; left > 0; left -= args.chunk) {
      const n = Math.min(left, args.chunk);
      const { rows } = await client.query(addJobs, [payload(n)]);
      if (rows[0].n !== n) throw new Error(`add_jobs added ${rows[0].n} jobs instead of ${n}`);
    }
  });
  const enqueueSeconds = (performance.now() - enqueueStart) / 1000;
  const queued = await count();
  if (queued !== args.jobs) throw new Error(`expected ${args.jobs} queued jobs, found ${queued}`);
  log(`enqueued ${args.jobs} jobs in ${enqueueSeconds.toFixed(3)} s`);

  // 3. Workers: fork, wait until each has loaded graphile-worker, then start them together.
  let completed = 0;
  const perChild = new Array(args.processes).fill(0);
  let stopping = false;
  const waiters = new Map(); // "type:index" -> resolve
  const waitFor = (type, i) => new Promise((resolve) => waiters.set(`${type}:${i}`, resolve));
  const childArgs = ["--worker", "--database-url", args.url, "--mode", args.mode];
  if (args.concurrency !== undefined) childArgs.push("--concurrency", String(args.concurrency));
  for (let i = 0; i < args.processes; i++) {
    const child = fork(fileURLToPath(import.meta.url), childArgs, {
      cwd: HERE,
      stdio: ["ignore", 2, 2, "ipc"], // child stdout -> our stderr: stdout is the JSON line only
    });
    child.on("message", (msg) => {
      if (msg.type === "progress") {
        completed += msg.done - perChild[i];
        perChild[i] = msg.done;
      } else if (msg.type === "fatal") {
        fail(`worker process ${i + 1}: ${msg.message}`);
      }
      waiters.get(`${msg.type}:${i}`)?.(msg);
    });
    child.on("error", (e) => fail(`worker process ${i + 1}: ${e.message}`));
    child.on("exit", (code, signal) => {
      if (!stopping || code !== 0) {
        fail(`worker process ${i + 1} exited unexpectedly (code ${code}, signal ${signal})`);
      }
    });
    children.push(child);
  }
  await Promise.all(children.map((_, i) => waitFor("ready", i)));

  // 4. Drain. The clock starts when the workers are told to start; it stops when the jobs
  // table is empty (graphile-worker deletes a job when it completes). The workers' success
  // events only tell us when to look closely; the table is the truth.
  const drainStart = performance.now();
  for (const c of children) c.send({ type: "go" });
  let lastCheck = performance.now();
  let lastProgressLog = lastCheck;
  for (;;) {
    const now = performance.now();
    if (completed >= args.jobs || now - lastCheck >= 1000) {
      lastCheck = now;
      const { rows } = await q(
        `select count(*)::int as n, count(*) filter (where last_error is not null)::int as failed,
                min(last_error) as error
           from ${SCHEMA}._private_jobs`,
      );
      if (rows[0].failed > 0) {
        throw new Error(`${rows[0].failed} jobs failed; first error: ${rows[0].error}`);
      }
      if (rows[0].n === 0) break;
      if (now - lastProgressLog >= 5000) {
        lastProgressLog = now;
        log(`${rows[0].n} jobs left after ${((now - drainStart) / 1000).toFixed(1)} s`);
      }
    }
    await sleep(completed >= args.jobs ? 2 : 20);
  }
  const drainSeconds = (performance.now() - drainStart) / 1000;

  // 5. Stop the workers (bounded), release the pool, report.
  stopping = true;
  const stopTimer = setTimeout(() => fail("worker processes did not stop within 15 s"), 15_000);
  await Promise.all(
    children.map((c) => {
      const exited = new Promise((resolve) => c.once("exit", resolve));
      c.send({ type: "stop" });
      return exited;
    }),
  );
  clearTimeout(stopTimer);
  await utils.release();
  clearTimeout(deadline);
  if (completed !== args.jobs) {
    log(`note: workers reported ${completed} successes for ${args.jobs} jobs`);
  }
  const round = (x) => Math.round(x);
  process.stdout.write(
    JSON.stringify({
      mode: args.mode,
      processes: args.processes,
      jobs: args.jobs,
      enqueue_per_sec: round(args.jobs / enqueueSeconds),
      drain_per_sec: round(args.jobs / drainSeconds),
      seconds: Number(drainSeconds.toFixed(3)),
      concurrency: workerPreset(args.mode, args.concurrency).concurrentJobs,
      graphile_worker: VERSION,
    }) + "\n",
  );
  process.exit(0);
}

let args;
try {
  args = parseCli();
} catch (e) {
  process.stderr.write(`run.mjs: error: ${e.message}\n`);
  process.exit(2);
}
if (args.worker) {
  workerMain(args).catch((e) => {
    process.stderr.write(`run.mjs worker: error: ${e?.stack ?? e}\n`);
    process.exit(1);
  });
} else {
  process.on("unhandledRejection", (e) => fail(`unhandled rejection: ${e?.stack ?? e}`));
  coordinatorMain(args).catch((e) => fail(e?.message ?? String(e)));
}
