/**
 * Start a FlowSync run and follow it live, the TypeScript twin of ../python/follow_run.py.
 *
 *   node --experimental-websocket build/follow_run.js --url http://127.0.0.1:8000 \
 *     --key fsk_... [--workflow ID] [--input '{"name": "Ada"}']
 *
 * (see ../README.md for building it; Node 22 needs no flag). `--url` and `--key` default
 * to FLOWSYNC_URL and FLOWSYNC_API_KEY. Without `--workflow` it runs the newest workflow
 * named "follow-run example", creating it first when there is none.
 *
 * Queries and mutations go over HTTP with fetch, the subscription over a websocket with
 * graphql-ws (graphql-transport-ws, the key in `connection_init`). Every operation is in
 * operations.graphql, typed by graphql-codegen from web/schema.graphql into gql/graphql.ts:
 * variables and results are checked by tsc, no hand-written response types.
 *
 * It prints every event of the run in sequence order (those before the subscription began
 * from the run's timeline), then exits 0 when the run completed, 1 when it failed or was
 * cancelled, 2 when FlowSync refused a request (a wrong key) or could not be reached.
 */
import { createClient } from "graphql-ws";
import { parseArgs } from "node:util";
import {
  CreateWorkflowDocument,
  FindWorkflowsDocument,
  FollowDocument,
  HistoryDocument,
  OutcomeDocument,
  StartExecutionDocument,
  type FollowSubscription,
  type FollowSubscriptionVariables,
  type RefusalFragment,
  type RunEventFragment,
  type TypedDocumentString,
} from "./gql/graphql.js";

const EXAMPLE_NAME = "follow-run example";
const EXAMPLE_DEFINITION = {
  nodes: [
    { id: "start", type: "start" },
    { id: "wait", type: "delay", data: { seconds: 1 } },
    { id: "greet", type: "transform", data: { output: { greeting: "Hello, {{ input.name }}!" } } },
    { id: "end", type: "end", data: { output: { greeting: "{{ steps.greet.output.greeting }}" } } },
  ],
  edges: [
    { source: "start", target: "wait" },
    { source: "wait", target: "greet" },
    { source: "greet", target: "end" },
  ],
};

/** FlowSync answered, but not with what was asked: the message says why. */
class Refused extends Error {}

type GraphQLErrors = readonly { message: string; extensions?: Record<string, unknown> }[];

interface GraphQLReply<Data> {
  data?: Data | null;
  errors?: GraphQLErrors;
}

/** A GraphQL error as one line, naming a refused key as such. */
function explain(errors: GraphQLErrors): string {
  const first = errors[0];
  const code = first?.extensions?.["code"];
  if (code === "unauthenticated") return `FlowSync refused the API key: ${first?.message}`;
  const named = typeof code === "string" ? ` (${code})` : "";
  return `FlowSync answered with an error${named}: ${first?.message}`;
}

function describe(refusal: RefusalFragment): string {
  const problems =
    refusal.__typename === "ValidationError"
      ? refusal.problems.map((p) => `${p.path}: ${p.message}`).join("; ")
      : "";
  const wait =
    refusal.__typename === "BackpressureError" ? ` (retry after ${refusal.retryAfter} s)` : "";
  return `${refusal.code}: ${refusal.message}${wait}${problems ? ` [${problems}]` : ""}`;
}

function show(event: RunEventFragment): void {
  const when = new Date(event.at).toISOString().slice(11, 23);
  const line = `${String(event.sequence).padStart(5)}  ${when}  ${event.kind.padEnd(20)} ${event.status.padEnd(10)} ${event.nodeId ?? ""}`;
  console.log(line.trimEnd());
}

async function follow(base: string, key: string, workflowId: string | undefined, input: unknown) {
  const authorization = `Bearer ${key}`;

  /** One operation over HTTP; its data, typed by the document. */
  async function send<Result, Variables>(
    document: TypedDocumentString<Result, Variables>,
    variables: Variables,
  ): Promise<Result> {
    const reply = await fetch(`${base}/graphql`, {
      method: "POST",
      headers: { "Content-Type": "application/json", Authorization: authorization },
      body: JSON.stringify({ query: document.toString(), variables }),
    });
    const body = (await reply.json()) as GraphQLReply<Result>;
    if (body.errors?.length) throw new Refused(explain(body.errors));
    if (!body.data) throw new Refused(`FlowSync answered ${reply.status} without data`);
    return body.data;
  }

  let wid = workflowId;
  if (wid === undefined) {
    const found = await send(FindWorkflowsDocument, {});
    const existing = found.workflows.edges.find((e) => e.node.name === EXAMPLE_NAME)?.node;
    if (existing) {
      console.log(`workflow ${existing.id} (${existing.name})`);
      wid = existing.id;
    } else {
      const { createWorkflow: created } = await send(CreateWorkflowDocument, {
        input: { name: EXAMPLE_NAME, definition: EXAMPLE_DEFINITION },
      });
      if (created.__typename !== "WorkflowPayload") {
        throw new Refused(`FlowSync did not create the workflow: ${describe(created)}`);
      }
      console.log(`workflow ${created.workflow.id} (${created.workflow.name}, created)`);
      wid = created.workflow.id;
    }
  }

  const { startExecution: started } = await send(StartExecutionDocument, {
    workflowId: wid,
    input,
  });
  if (started.__typename !== "StartExecutionPayload") {
    throw new Refused(`FlowSync did not start the run: ${describe(started)}`);
  }
  const id = started.execution.id;
  console.log(`execution ${id} started`);

  const ws = createClient({
    url: `ws${base.slice("http".length)}/graphql`,
    connectionParams: { Authorization: authorization },
    retryAttempts: 0,
  });
  try {
    const variables: FollowSubscriptionVariables = { id };
    const results = ws.iterate<FollowSubscription>({ query: FollowDocument.toString(), variables });
    for await (const result of results) {
      if (result.errors?.length) throw new Refused(explain(result.errors));
      const event = result.data?.executionUpdated;
      if (!event) continue;
      if (event.kind !== "snapshot") {
        show(event);
        continue;
      }
      // The snapshot stands for every event up to its sequence: print those from the
      // run's timeline (its first 1000 events), then what comes after, live.
      const history = await send(HistoryDocument, { id });
      for (const past of history.execution?.timeline ?? []) {
        if (past.sequence <= event.sequence) show(past);
      }
      console.log(`following ${id} live after sequence ${event.sequence}`);
    }
  } finally {
    await ws.dispose();
  }

  // executionUpdated completes after the run's final event.
  const { execution: outcome } = await send(OutcomeDocument, { id });
  if (outcome?.status === "COMPLETED") {
    console.log(`execution ${id} COMPLETED, output: ${JSON.stringify(outcome.output)}`);
    return 0;
  }
  console.error(`execution ${id} ${outcome?.status}: ${JSON.stringify(outcome?.error)}`);
  return 1;
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      url: { type: "string", default: process.env.FLOWSYNC_URL },
      key: { type: "string", default: process.env.FLOWSYNC_API_KEY },
      workflow: { type: "string" },
      input: { type: "string", default: '{"name": "FlowSync"}' },
    },
  });
  if (!values.url || !values.key) {
    console.error("give --url and --key (or FLOWSYNC_URL and FLOWSYNC_API_KEY)");
    return 2;
  }
  if (typeof WebSocket === "undefined") {
    console.error("no WebSocket in this Node: use Node 22, or Node 20 with --experimental-websocket");
    return 2;
  }
  const base = values.url.replace(/\/+$/, "").replace(/\/graphql$/, "");
  const input: unknown = JSON.parse(values.input);
  try {
    return await follow(base, values.key, values.workflow, input);
  } catch (error) {
    if (error instanceof Refused) {
      console.error(error.message);
    } else if (error instanceof Error) {
      console.error(`FlowSync at ${base} could not be reached: ${error.message}`);
    } else {
      // graphql-ws rejects with the socket's CloseEvent when the server closes it.
      const { code, reason } = error as { code?: number; reason?: string };
      console.error(`FlowSync closed the websocket: ${code} ${reason ?? ""}`.trimEnd());
    }
    return 2;
  }
}

process.exitCode = await main();
