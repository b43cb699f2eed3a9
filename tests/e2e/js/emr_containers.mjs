// The AWS SDK for JavaScript v3 (@aws-sdk/client-emr-containers), unchanged,
// against a running sparkvc-server over the emr-containers REST protocol
// (restJson1, SigV4).
//
// The client is configured by `endpoint` and `region` only; credentials come
// from the SDK's default chain, i.e. AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY.
//
// Environment:
//   SPARKVC_ENDPOINT        http://127.0.0.1:PORT of the server's API port
//   SPARKVC_REGION          the server's --region
//   AWS_ACCESS_KEY_ID       a key of the server's identity file, allowed
//   AWS_SECRET_ACCESS_KEY   emr-containers:* and iam:PassRole
//   SPARKVC_NAMESPACE       the EKS namespace of the virtual cluster
//   SPARKVC_CLUSTER_ID      optional: containerProvider.id (default "local")
//   SPARKVC_EXPECT_TERMINAL optional: "1" polls DescribeJobRun until the first
//                           run is COMPLETED/FAILED/CANCELLED (needs a cluster);
//                           otherwise its state must be PENDING or SUBMITTED
//   SPARKVC_TERMINAL_TIMEOUT optional: seconds of that poll (default 240)
//
// Every check throws on a mismatch; the process exits 1 on the first failure
// and prints one JSON line {"checks": N, ...} when all pass.

import { createRequire } from "node:module";
import { randomUUID } from "node:crypto";
import {
  EMRContainersClient,
  CreateVirtualClusterCommand,
  DescribeVirtualClusterCommand,
  DeleteVirtualClusterCommand,
  StartJobRunCommand,
  DescribeJobRunCommand,
  ListJobRunsCommand,
  CancelJobRunCommand,
  TagResourceCommand,
  ListTagsForResourceCommand,
  ResourceNotFoundException,
  ValidationException,
  EMRContainersServiceException,
  paginateListJobRuns,
} from "@aws-sdk/client-emr-containers";

function env(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
}

const ENDPOINT = env("SPARKVC_ENDPOINT");
const REGION = env("SPARKVC_REGION");
env("AWS_ACCESS_KEY_ID");
env("AWS_SECRET_ACCESS_KEY");
const NAMESPACE = env("SPARKVC_NAMESPACE");
const CLUSTER_ID = process.env.SPARKVC_CLUSTER_ID || "local";
const EXPECT_TERMINAL = process.env.SPARKVC_EXPECT_TERMINAL === "1";
const TERMINAL_TIMEOUT_S = Number(process.env.SPARKVC_TERMINAL_TIMEOUT || "240");
const ACCOUNT = "123456789012";
const ROLE = `arn:aws:iam::${ACCOUNT}:role/spark`;
const RELEASE = "emr-7.2.0-latest";
const ENTRY_POINT = "local:///opt/spark/examples/src/main/python/pi.py";
const TERMINAL = ["COMPLETED", "FAILED", "CANCELLED"];
const sdkVersion = createRequire(import.meta.url)("@aws-sdk/client-emr-containers/package.json").version;

let checks = 0;
function check(condition, what) {
  if (!condition) throw new Error(`check failed: ${what}`);
  checks += 1;
}
const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);
const sortedKeys = (o) => Object.fromEntries(Object.entries(o).sort(([a], [b]) => (a < b ? -1 : 1)));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** The error a call throws; it must throw one. */
async function errorOf(promise, what) {
  try {
    await promise;
  } catch (err) {
    return err;
  }
  throw new Error(`check failed: ${what} succeeded, but an error was expected`);
}

/** A modeled error: its class, name, 4xx status, message and request id. */
function checkModeledError(err, cls, status, what) {
  check(err instanceof cls, `${what}: ${err?.name} (${err?.message}) is not a ${cls.name}`);
  check(err instanceof EMRContainersServiceException, `${what}: not an EMRContainersServiceException`);
  check(err.name === cls.name, `${what}: name ${err.name}`);
  check(err.$fault === "client", `${what}: $fault ${err.$fault}`);
  check(err.$metadata?.httpStatusCode === status, `${what}: status ${err.$metadata?.httpStatusCode}, expected ${status}`);
  check(typeof err.message === "string" && err.message.length > 0, `${what}: no message`);
  check(err.$metadata?.requestId, `${what}: no x-amzn-RequestId`);
}

async function main() {
  const client = new EMRContainersClient({ endpoint: ENDPOINT, region: REGION });
  const suffix = randomUUID().slice(0, 8);
  const started = new Date(Date.now() - 5000);

  // --- CreateVirtualCluster (with tags), DescribeVirtualCluster ----------
  const vc = await client.send(
    new CreateVirtualClusterCommand({
      name: `js-sdk-${suffix}`,
      containerProvider: { id: CLUSTER_ID, type: "EKS", info: { eksInfo: { namespace: NAMESPACE } } },
      tags: { team: "js", sdk: "aws-sdk-js-v3" },
      clientToken: `js-vc-${suffix}`,
    }),
  );
  check(vc.$metadata.httpStatusCode === 200, `CreateVirtualCluster status ${vc.$metadata.httpStatusCode}`);
  check(/^[0-9a-z]{25}$/.test(vc.id), `virtual cluster id ${vc.id}`);
  check(vc.name === `js-sdk-${suffix}`, `virtual cluster name ${vc.name}`);
  check(vc.arn === `arn:aws:emr-containers:${REGION}:${ACCOUNT}:/virtualclusters/${vc.id}`, `virtual cluster ARN ${vc.arn}`);
  const vcId = vc.id;
  let failure;
  try {
    await exercise(client, suffix, started, vc);
  } catch (err) {
    failure = err;
  }
  // One running virtual cluster per namespace (as on AWS): delete this one so
  // the program can run again against the same server and namespace.
  try {
    const deleted = await client.send(new DeleteVirtualClusterCommand({ id: vcId }));
    check(deleted.id === vcId, `DeleteVirtualCluster answered ${deleted.id}`);
    const { state } = (await client.send(new DescribeVirtualClusterCommand({ id: vcId }))).virtualCluster;
    check(["TERMINATING", "TERMINATED"].includes(state), `a deleted virtual cluster is ${state}`);
  } catch (err) {
    if (!failure) throw err;
    console.error(`(cleanup failed too: ${err.message})`);
  }
  if (failure) throw failure;
  // One line, spaced like Python's json.dumps: {"checks": N, ...}
  const line = Object.entries({ checks, ...summary }).map(([k, v]) => `${JSON.stringify(k)}: ${JSON.stringify(v)}`);
  console.log(`{${line.join(", ")}}`);
}

const summary = {
  sdk: "@aws-sdk/client-emr-containers",
  version: sdkVersion,
  node: process.version,
};

async function exercise(client, suffix, started, vc) {
  const vcId = vc.id;
  summary.virtualClusterId = vcId;

  const { virtualCluster } = await client.send(new DescribeVirtualClusterCommand({ id: vcId }));
  check(virtualCluster.id === vcId && virtualCluster.arn === vc.arn, "DescribeVirtualCluster id/arn");
  check(virtualCluster.state === "RUNNING", `virtual cluster state ${virtualCluster.state}`);
  check(virtualCluster.createdAt instanceof Date, "virtual cluster createdAt is not a Date");
  check(virtualCluster.createdAt >= started, `virtual cluster createdAt ${virtualCluster.createdAt?.toISOString()}`);
  check(
    same(sortedKeys(virtualCluster.tags ?? {}), { sdk: "aws-sdk-js-v3", team: "js" }),
    `virtual cluster tags ${JSON.stringify(virtualCluster.tags)}`,
  );
  check(virtualCluster.containerProvider?.id === CLUSTER_ID, "containerProvider.id lost");
  check(virtualCluster.containerProvider?.info?.eksInfo?.namespace === NAMESPACE, "namespace lost");

  // --- StartJobRun, DescribeJobRun ----------------------------------------
  const driver = {
    sparkSubmitJobDriver: {
      entryPoint: ENTRY_POINT,
      entryPointArguments: ["10"],
      sparkSubmitParameters: "--conf spark.executor.instances=1 --conf spark.executor.memory=1g",
    },
  };
  const overrides = {
    applicationConfiguration: [{ classification: "spark-defaults", properties: { "spark.driver.memory": "1g" } }],
  };
  const startInput = (i, extra = {}) => ({
    name: `pi-${i}`,
    virtualClusterId: vcId,
    clientToken: `js-run-${suffix}-${i}`,
    executionRoleArn: ROLE,
    releaseLabel: RELEASE,
    jobDriver: driver,
    ...extra,
  });
  const run = await client.send(
    new StartJobRunCommand(startInput(0, { configurationOverrides: overrides, tags: { team: "js", step: "0" } })),
  );
  check(/^[0-9a-z]{19}$/.test(run.id), `job run id ${run.id}`);
  check(run.name === "pi-0", `StartJobRun name ${run.name}`);
  check(run.virtualClusterId === vcId, "StartJobRun answered another virtual cluster");
  check(run.arn === `${vc.arn}/jobruns/${run.id}`, `job run ARN ${run.arn}`);
  const runId = run.id;
  const again = await client.send(
    new StartJobRunCommand(startInput(0, { configurationOverrides: overrides, tags: { team: "js", step: "0" } })),
  );
  check(again.id === runId, "StartJobRun with the same clientToken started a second run");

  const { jobRun } = await client.send(new DescribeJobRunCommand({ id: runId, virtualClusterId: vcId }));
  check(jobRun.id === runId && jobRun.arn === run.arn && jobRun.virtualClusterId === vcId, "DescribeJobRun ids");
  check(jobRun.name === "pi-0", `described name ${jobRun.name}`);
  check(jobRun.releaseLabel === RELEASE, `releaseLabel ${jobRun.releaseLabel}`);
  check(jobRun.executionRoleArn === ROLE, `executionRoleArn ${jobRun.executionRoleArn}`);
  check(jobRun.clientToken === `js-run-${suffix}-0`, `clientToken ${jobRun.clientToken}`);
  check(jobRun.createdAt instanceof Date, "job run createdAt is not a Date");
  check(!Number.isNaN(jobRun.createdAt.getTime()), "job run createdAt is an invalid Date");
  check(jobRun.createdAt >= started && jobRun.createdAt <= new Date(Date.now() + 60000), `createdAt ${jobRun.createdAt.toISOString()}`);
  check(jobRun.createdBy === `arn:aws:iam::${ACCOUNT}:user/sdk`, `createdBy ${jobRun.createdBy}`);
  check(same(jobRun.jobDriver, driver), `jobDriver came back as ${JSON.stringify(jobRun.jobDriver)}`);
  check(
    same(jobRun.configurationOverrides?.applicationConfiguration, overrides.applicationConfiguration),
    `applicationConfiguration came back as ${JSON.stringify(jobRun.configurationOverrides)}`,
  );
  check(same(sortedKeys(jobRun.tags ?? {}), { step: "0", team: "js" }), `run tags ${JSON.stringify(jobRun.tags)}`);
  check(
    ["PENDING", "SUBMITTED", "RUNNING", ...TERMINAL].includes(jobRun.state),
    `job run state ${jobRun.state}`,
  );

  // --- More runs; ListJobRuns with a states filter; the paginator ----------
  for (const i of [1, 2]) {
    const r = await client.send(new StartJobRunCommand(startInput(i, { tags: { team: "js" } })));
    check(r.virtualClusterId === vcId && r.name === `pi-${i}`, `StartJobRun pi-${i}`);
  }
  const allStates = ["PENDING", "SUBMITTED", "RUNNING", "FAILED", "CANCELLED", "CANCEL_PENDING", "COMPLETED"];
  const listed = await client.send(new ListJobRunsCommand({ virtualClusterId: vcId, states: allStates }));
  check(
    same(listed.jobRuns.map((r) => r.name).sort(), ["pi-0", "pi-1", "pi-2"]),
    `ListJobRuns with every state gave ${JSON.stringify(listed.jobRuns.map((r) => r.name))}`,
  );
  check(listed.jobRuns.every((r) => r.createdAt instanceof Date), "listed createdAt are not Dates");
  check(listed.nextToken === undefined, `a single page has a nextToken ${listed.nextToken}`);
  if (!EXPECT_TERMINAL) {
    const pending = await client.send(
      new ListJobRunsCommand({ virtualClusterId: vcId, states: ["PENDING", "SUBMITTED"] }),
    );
    check(pending.jobRuns.length === 3, `states PENDING/SUBMITTED gave ${pending.jobRuns.length} runs`);
    const none = await client.send(
      new ListJobRunsCommand({ virtualClusterId: vcId, states: ["COMPLETED", "FAILED"] }),
    );
    check(Array.isArray(none.jobRuns) && none.jobRuns.length === 0, `states COMPLETED/FAILED gave ${JSON.stringify(none.jobRuns)}`);
  }
  // Timestamps in the query string (ISO 8601, as the SDK serializes them).
  const window = await client.send(
    new ListJobRunsCommand({ virtualClusterId: vcId, createdAfter: started, createdBefore: new Date(Date.now() + 300000) }),
  );
  check(window.jobRuns.length === 3, `createdAfter/createdBefore around the test gave ${window.jobRuns.length} runs`);
  const before = await client.send(new ListJobRunsCommand({ virtualClusterId: vcId, createdBefore: started }));
  check(before.jobRuns.length === 0, `createdBefore the test gave ${before.jobRuns.length} runs`);
  const named = await client.send(new ListJobRunsCommand({ virtualClusterId: vcId, name: "pi-1" }));
  check(same(named.jobRuns.map((r) => r.name), ["pi-1"]), "ListJobRuns name filter");

  const pages = [];
  for await (const page of paginateListJobRuns({ client, pageSize: 2 }, { virtualClusterId: vcId })) {
    pages.push(page);
    check(pages.length <= 10, "the paginator does not end");
  }
  check(pages.length === 2, `3 runs in pages of 2 came in ${pages.length} pages`);
  check(pages[0].jobRuns.length === 2 && typeof pages[0].nextToken === "string", "the first page: 2 runs and a token");
  check(pages[1].jobRuns.length === 1 && pages[1].nextToken === undefined, "the last page: 1 run, no token");
  const paged = pages.flatMap((p) => p.jobRuns.map((r) => r.id));
  check(new Set(paged).size === 3, `paginated ids repeat: ${paged}`);
  check(
    same(pages.flatMap((p) => p.jobRuns.map((r) => r.name)).sort(), ["pi-0", "pi-1", "pi-2"]),
    "paginated run names",
  );

  const resumed = [];
  for await (const page of paginateListJobRuns(
    { client, pageSize: 2, startingToken: pages[0].nextToken },
    { virtualClusterId: vcId },
  )) {
    resumed.push(...page.jobRuns.map((r) => r.id));
  }
  check(same(resumed, paged.slice(2)), `the paginator from a startingToken gave ${resumed}`);

  // --- StartJobRun of another, CancelJobRun ---------------------------------
  const victim = await client.send(new StartJobRunCommand(startInput("cancel")));
  const cancelled = await client.send(new CancelJobRunCommand({ id: victim.id, virtualClusterId: vcId }));
  check(cancelled.id === victim.id && cancelled.virtualClusterId === vcId, `CancelJobRun answered ${JSON.stringify(cancelled)}`);
  let cancelState;
  for (let i = 0; i < 60; i++) {
    cancelState = (await client.send(new DescribeJobRunCommand({ id: victim.id, virtualClusterId: vcId }))).jobRun;
    if (cancelState.state === "CANCELLED") break;
    check(cancelState.state === "CANCEL_PENDING", `a cancelled run is ${cancelState.state}`);
    await sleep(1000);
  }
  check(cancelState.state === "CANCELLED", `a cancelled run is still ${cancelState.state}`);
  check(cancelState.finishedAt instanceof Date, "a cancelled run has no finishedAt Date");
  const cancelledList = await client.send(new ListJobRunsCommand({ virtualClusterId: vcId, states: ["CANCELLED"] }));
  check(
    cancelledList.jobRuns.some((r) => r.id === victim.id),
    `states CANCELLED does not list the cancelled run: ${JSON.stringify(cancelledList.jobRuns.map((r) => r.id))}`,
  );

  // --- TagResource / ListTagsForResource on a run ARN ------------------------
  const tagged = await client.send(
    new TagResourceCommand({ resourceArn: run.arn, tags: { "cost-center": "42", "with space": "a/b+c" } }),
  );
  check(tagged.$metadata.httpStatusCode === 200, `TagResource status ${tagged.$metadata.httpStatusCode}`);
  const { tags } = await client.send(new ListTagsForResourceCommand({ resourceArn: run.arn }));
  check(
    same(sortedKeys(tags ?? {}), { "cost-center": "42", step: "0", team: "js", "with space": "a/b+c" }),
    `tags after TagResource ${JSON.stringify(tags)}`,
  );
  const vcTags = await client.send(new ListTagsForResourceCommand({ resourceArn: vc.arn }));
  check(same(sortedKeys(vcTags.tags ?? {}), { sdk: "aws-sdk-js-v3", team: "js" }), "virtual cluster tags by ARN");

  // --- Errors through the SDK's modeled exceptions ----------------------------
  const missingRun = "0".repeat(19);
  const notFound = await errorOf(
    client.send(new DescribeJobRunCommand({ id: missingRun, virtualClusterId: vcId })),
    "DescribeJobRun of a run that does not exist",
  );
  checkModeledError(notFound, ResourceNotFoundException, 400, "DescribeJobRun of a missing run");
  check(notFound.message.includes(missingRun) || /exist/i.test(notFound.message), `not-found message ${notFound.message}`);

  const missingVc = "0".repeat(25);
  const vcNotFound = await errorOf(
    client.send(new DescribeVirtualClusterCommand({ id: missingVc })),
    "DescribeVirtualCluster of a cluster that does not exist",
  );
  checkModeledError(vcNotFound, ResourceNotFoundException, 400, "DescribeVirtualCluster of a missing id");

  const badVc = await errorOf(
    client.send(new DescribeVirtualClusterCommand({ id: "bad/id" })),
    "DescribeVirtualCluster of a malformed id",
  );
  checkModeledError(badVc, ValidationException, 400, "DescribeVirtualCluster of a malformed id");

  // --- The first run: PENDING without a cluster, or polled to its end --------
  let finalRun;
  if (EXPECT_TERMINAL) {
    const deadline = Date.now() + TERMINAL_TIMEOUT_S * 1000;
    for (;;) {
      finalRun = (await client.send(new DescribeJobRunCommand({ id: runId, virtualClusterId: vcId }))).jobRun;
      if (TERMINAL.includes(finalRun.state)) break;
      check(Date.now() < deadline, `run ${runId} still ${finalRun.state} after ${TERMINAL_TIMEOUT_S} s`);
      await sleep(2000);
    }
    check(finalRun.finishedAt instanceof Date, "a finished run has no finishedAt Date");
    check(finalRun.finishedAt >= finalRun.createdAt, "finishedAt is before createdAt");
  } else {
    finalRun = (await client.send(new DescribeJobRunCommand({ id: runId, virtualClusterId: vcId }))).jobRun;
    check(["PENDING", "SUBMITTED"].includes(finalRun.state), `without a cluster the run is ${finalRun.state}`);
    check(finalRun.finishedAt === undefined, "a pending run has a finishedAt");
  }

  Object.assign(summary, { jobRunId: runId, cancelledJobRunId: victim.id, finalState: finalRun.state });
  if (finalRun.failureReason) summary.failureReason = finalRun.failureReason;
}

main().catch((err) => {
  console.error(err?.stack ?? String(err));
  if (err?.$metadata) console.error("$metadata:", JSON.stringify(err.$metadata));
  if (err?.$response) {
    const { statusCode, headers } = err.$response;
    console.error("$response:", JSON.stringify({ statusCode, headers }));
  }
  process.exit(1);
});
