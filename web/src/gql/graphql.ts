/* eslint-disable */
/** Internal type. DO NOT USE DIRECTLY. */
type Exact<T extends { [key: string]: unknown }> = { [K in keyof T]: T[K] };
/** Internal type. DO NOT USE DIRECTLY. */
export type Incremental<T> = T | { [P in keyof T]?: P extends ' $fragmentName' | '__typename' ? T[P] : never };
import type { DocumentTypeDecoration } from '@graphql-typed-document-node/core';
export type CreateWorkflowInput = {
  definition: unknown;
  description?: string | null | undefined;
  /** Executions beyond this many running wait PENDING (null: no limit). */
  maxConcurrency?: number | null | undefined;
  name: string;
  /** What this first version is (at most 500 characters); kept with it. */
  versionMessage?: string | null | undefined;
};

export type ExecutionStatus =
  | 'CANCELLED'
  | 'COMPLETED'
  | 'FAILED'
  | 'PENDING'
  | 'RUNNING';

export type ExpressionKind =
  /** A condition's CEL expression (no `{{ }}`). */
  | 'EXPRESSION'
  /** A template string: text with `{{ expr }}` placeholders. */
  | 'TEMPLATE';

export type Role =
  /** Also members and API keys. */
  | 'ADMIN'
  /** Also changes workflows and triggers. */
  | 'EDITOR'
  /** Also starts, cancels, retries, signals and redrives runs. */
  | 'OPERATOR'
  /** Reads and subscribes. */
  | 'VIEWER';

export type StepStatus =
  | 'CANCELLED'
  | 'COMPLETED'
  | 'FAILED'
  | 'PENDING'
  | 'QUEUED'
  | 'RUNNING'
  | 'SKIPPED'
  | 'WAITING';

export type TriggerKind =
  | 'CRON'
  | 'MANUAL'
  | 'WEBHOOK';

export type UpdateWorkflowInput = {
  definition?: unknown;
  description?: string | null | undefined;
  /** The version you read: if the workflow is at another one now, nothing changes and the result is a ConflictError naming both. */
  expectedVersion?: number | null | undefined;
  /** A new limit on running executions; null removes it; left out, kept. */
  maxConcurrency?: number | null | undefined;
  name?: string | null | undefined;
  /** What the new version changes (at most 500 characters); kept with the version the new `definition` makes. Needs `definition`; ignored when the definition is unchanged (no version is made). */
  versionMessage?: string | null | undefined;
};

export type EditorWorkflowQueryVariables = Exact<{
  id: string | number;
}>;


export type EditorWorkflowQuery = { workflow: { id: string, name: string, description: string | null, version: number, definition: unknown, updatedAt: string } | null, workflowVersions: { edges: Array<{ node: { id: string, version: number, createdAt: string, definition: unknown, message: string | null, author: string | null } }> } | null };

export type ValidateDraftQueryVariables = Exact<{
  definition: unknown;
}>;


export type ValidateDraftQuery = { validateWorkflow: { valid: boolean, problems: Array<{ path: string, message: string, nodeId: string | null, edge: number | null }> } };

export type CreateDraftMutationVariables = Exact<{
  input: CreateWorkflowInput;
}>;


export type CreateDraftMutation = { createWorkflow:
    | { __typename: 'ValidationError', code: string, message: string, problems: Array<{ path: string, message: string, nodeId: string | null, edge: number | null }> }
    | { __typename: 'WorkflowPayload', workflow: { id: string, version: number } }
   };

export type SaveDraftMutationVariables = Exact<{
  id: string | number;
  input: UpdateWorkflowInput;
}>;


export type SaveDraftMutation = { updateWorkflow:
    | { __typename: 'ConflictError', currentVersion: number | null, code: string, message: string }
    | { __typename: 'NotFoundError', code: string, message: string }
    | { __typename: 'ValidationError', code: string, message: string, problems: Array<{ path: string, message: string, nodeId: string | null, edge: number | null }> }
    | { __typename: 'WorkflowPayload', workflow: { id: string, version: number, definition: unknown } }
   };

export type NodeTypesQueryVariables = Exact<{ [key: string]: never; }>;


export type NodeTypesQuery = { nodeTypes: Array<{ type: string, label: string, description: string, dataSchema: unknown, hasTarget: boolean, hasSource: boolean, sourceHandles: Array<string>, optionalHandles: Array<string>, maxOutgoing: number | null }> };

export type CheckExpressionQueryVariables = Exact<{
  expression: string;
  kind: ExpressionKind;
}>;


export type CheckExpressionQuery = { checkExpression: { valid: boolean, problems: Array<{ message: string, position: number | null }> } };

export type StepFieldsFragment = { id: string, nodeId: string, nodeType: string, status: StepStatus, attempt: number, input: unknown, output: unknown, error: unknown, queuedAt: string | null, startedAt: string | null, finishedAt: string | null, durationMs: number | null };

export type ExecutionSummaryFragment = { id: string, workflowId: string, workflowVersion: number, status: ExecutionStatus, createdAt: string, startedAt: string | null, finishedAt: string | null, durationMs: number | null, lastSequence: number, error: unknown, workflow: { id: string, name: string } | null };

type UserErrorFields_BackpressureError_Fragment = { __typename: 'BackpressureError', retryAfter: number, code: string, message: string };

type UserErrorFields_ConflictError_Fragment = { __typename: 'ConflictError', code: string, message: string };

type UserErrorFields_NotFoundError_Fragment = { __typename: 'NotFoundError', code: string, message: string };

type UserErrorFields_ValidationError_Fragment = { __typename: 'ValidationError', code: string, message: string, problems: Array<{ path: string, message: string, nodeId: string | null, edge: number | null }> };

export type UserErrorFieldsFragment =
  | UserErrorFields_BackpressureError_Fragment
  | UserErrorFields_ConflictError_Fragment
  | UserErrorFields_NotFoundError_Fragment
  | UserErrorFields_ValidationError_Fragment
;

export type OverviewQueryVariables = Exact<{ [key: string]: never; }>;


export type OverviewQuery = { health: { status: string, database: string, eventsListener: string }, queueStats: { queued: number, scheduled: number, running: number, deadLetters: number, globalDepth: number, maxDepth: number, sheddingLoad: boolean }, metrics: { stepsCompletedLastMinute: number, executionsByStatus: Array<{ status: ExecutionStatus, count: number }> }, workers: Array<{ id: string, hostname: string, pid: number, concurrency: number, running: number, startedAt: string, lastHeartbeatAt: string, alive: boolean }>, series: { bucketSeconds: number, sampled: boolean, buckets: Array<{ start: string, executionsStarted: number, executionsCompleted: number, executionsFailed: number, stepsCompleted: number, stepDurationP50Ms: number | null, stepDurationP95Ms: number | null }> }, failures: { edges: Array<{ node: { id: string, workflowId: string, workflowVersion: number, status: ExecutionStatus, createdAt: string, startedAt: string | null, finishedAt: string | null, durationMs: number | null, lastSequence: number, error: unknown, workflow: { id: string, name: string } | null } }> } };

export type QueueLiveSubscriptionVariables = Exact<{ [key: string]: never; }>;


export type QueueLiveSubscription = { queueStatsUpdated: { queued: number, scheduled: number, running: number, deadLetters: number, globalDepth: number, maxDepth: number, sheddingLoad: boolean } };

export type DeadLettersQueryVariables = Exact<{
  executionId?: string | number | null | undefined;
  includeRedriven: boolean;
  first?: number | null | undefined;
  after?: string | null | undefined;
}>;


export type DeadLettersQuery = { deadLetters: { edges: Array<{ cursor: string, node: { id: string, executionId: string, nodeId: string, attempts: number, error: unknown, payload: unknown, createdAt: string, redrivenAt: string | null } }>, pageInfo: { hasNextPage: boolean, endCursor: string | null } } };

export type RedriveMutationVariables = Exact<{
  id: string | number;
}>;


export type RedriveMutation = { redriveDeadLetter:
    | { __typename: 'ConflictError', code: string, message: string }
    | { __typename: 'DeadLetterPayload', deadLetter: { id: string, redrivenAt: string | null } }
    | { __typename: 'NotFoundError', code: string, message: string }
   };

export type AuditQueryVariables = Exact<{
  actor?: string | null | undefined;
  action?: string | null | undefined;
  entityType?: string | null | undefined;
  entityId?: string | null | undefined;
  since?: string | null | undefined;
  until?: string | null | undefined;
  first?: number | null | undefined;
  after?: string | null | undefined;
}>;


export type AuditQuery = { auditLog: { edges: Array<{ cursor: string, node: { id: string, actor: string, action: string, entityType: string, entityId: string, data: unknown, at: string } }>, pageInfo: { hasNextPage: boolean, endCursor: string | null } } };

export type CreateApiKeyMutationVariables = Exact<{
  name: string;
  role?: Role | null | undefined;
}>;


export type CreateApiKeyMutation = { createApiKey:
    | { __typename: 'CreateApiKeyPayload', secret: string, apiKey: { id: string, name: string, prefix: string, createdAt: string, role: Role } }
    | { __typename: 'ValidationError', code: string, message: string, problems: Array<{ path: string, message: string, nodeId: string | null, edge: number | null }> }
   };

export type RevokeApiKeyMutationVariables = Exact<{
  id: string | number;
}>;


export type RevokeApiKeyMutation = { revokeApiKey:
    | { __typename: 'ApiKeyPayload', apiKey: { id: string, revokedAt: string | null } }
    | { __typename: 'NotFoundError', code: string, message: string }
   };

export type ApiKeysQueryVariables = Exact<{
  first?: number | null | undefined;
  after?: string | null | undefined;
}>;


export type ApiKeysQuery = { apiKeys: { edges: Array<{ node: { id: string, name: string, prefix: string, createdAt: string, revokedAt: string | null, role: Role } }> } };

export type RunQueryVariables = Exact<{
  id: string | number;
}>;


export type RunQuery = { execution: { input: unknown, output: unknown, definition: unknown, retriedFromId: string | null, id: string, workflowId: string, workflowVersion: number, status: ExecutionStatus, createdAt: string, startedAt: string | null, finishedAt: string | null, durationMs: number | null, lastSequence: number, error: unknown, steps: Array<{ id: string, nodeId: string, nodeType: string, status: StepStatus, attempt: number, input: unknown, output: unknown, error: unknown, queuedAt: string | null, startedAt: string | null, finishedAt: string | null, durationMs: number | null }>, workflow: { id: string, name: string, version: number } | null } | null };

export type RunEventsQueryVariables = Exact<{
  id: string | number;
}>;


export type RunEventsQuery = { execution: { id: string, timeline: Array<{ sequence: number, kind: string, at: string, status: string, nodeId: string | null, attempt: number | null, data: unknown }> } | null };

export type RunLiveSubscriptionVariables = Exact<{
  id: string | number;
}>;


export type RunLiveSubscription = { executionUpdated: { executionId: string, sequence: number, kind: string, at: string, status: string, nodeId: string | null, attempt: number | null, data: unknown, step: { id: string, nodeId: string, nodeType: string, status: StepStatus, attempt: number, input: unknown, output: unknown, error: unknown, queuedAt: string | null, startedAt: string | null, finishedAt: string | null, durationMs: number | null } | null, steps: Array<{ id: string, nodeId: string, nodeType: string, status: StepStatus, attempt: number, input: unknown, output: unknown, error: unknown, queuedAt: string | null, startedAt: string | null, finishedAt: string | null, durationMs: number | null }> | null } };

export type RunsQueryVariables = Exact<{
  workflowId?: string | number | null | undefined;
  triggerId?: string | number | null | undefined;
  status?: ExecutionStatus | null | undefined;
  first?: number | null | undefined;
  after?: string | null | undefined;
}>;


export type RunsQuery = { executions: { edges: Array<{ cursor: string, node: { id: string, workflowId: string, workflowVersion: number, status: ExecutionStatus, createdAt: string, startedAt: string | null, finishedAt: string | null, durationMs: number | null, lastSequence: number, error: unknown, workflow: { id: string, name: string } | null } }>, pageInfo: { hasNextPage: boolean, endCursor: string | null } } };

export type RunsFeedSubscriptionVariables = Exact<{
  workflowId?: string | number | null | undefined;
}>;


export type RunsFeedSubscription = { executionEvents: { executionId: string, workflowId: string, sequence: number, kind: string, at: string, status: string, execution: { id: string, workflowId: string, workflowVersion: number, status: ExecutionStatus, createdAt: string, startedAt: string | null, finishedAt: string | null, durationMs: number | null, lastSequence: number, error: unknown, workflow: { id: string, name: string } | null } | null } };

export type CancelRunMutationVariables = Exact<{
  id: string | number;
}>;


export type CancelRunMutation = { cancelExecution:
    | { __typename: 'ConflictError', code: string, message: string }
    | { __typename: 'ExecutionPayload', execution: { id: string, workflowId: string, workflowVersion: number, status: ExecutionStatus, createdAt: string, startedAt: string | null, finishedAt: string | null, durationMs: number | null, lastSequence: number, error: unknown, workflow: { id: string, name: string } | null } }
    | { __typename: 'NotFoundError', code: string, message: string }
   };

export type RetryRunMutationVariables = Exact<{
  id: string | number;
}>;


export type RetryRunMutation = { retryExecution:
    | { __typename: 'BackpressureError', retryAfter: number, code: string, message: string }
    | { __typename: 'ConflictError', code: string, message: string }
    | { __typename: 'NotFoundError', code: string, message: string }
    | { __typename: 'StartExecutionPayload', execution: { id: string, workflowId: string, workflowVersion: number, status: ExecutionStatus, createdAt: string, startedAt: string | null, finishedAt: string | null, durationMs: number | null, lastSequence: number, error: unknown, workflow: { id: string, name: string } | null } }
    | { __typename: 'ValidationError', code: string, message: string, problems: Array<{ path: string, message: string, nodeId: string | null, edge: number | null }> }
   };

export type WorkflowsQueryVariables = Exact<{
  first?: number | null | undefined;
  after?: string | null | undefined;
}>;


export type WorkflowsQuery = { workflows: { edges: Array<{ cursor: string, node: { id: string, name: string, description: string | null, version: number, updatedAt: string, maxConcurrency: number | null, triggers: Array<{ id: string, type: TriggerKind, enabled: boolean }>, executions: { edges: Array<{ node: { id: string, status: ExecutionStatus, createdAt: string } }> } } }>, pageInfo: { hasNextPage: boolean, endCursor: string | null } } };

export type WorkflowPageQueryVariables = Exact<{
  id: string | number;
}>;


export type WorkflowPageQuery = { workflow: { id: string, name: string, description: string | null, version: number, createdAt: string, updatedAt: string, definition: unknown, maxConcurrency: number | null, triggers: Array<{ id: string, type: TriggerKind, enabled: boolean, config: unknown, webhookUrl: string | null, nextRunAt: string | null, nextFireTimes: Array<string>, lastFiredAt: string | null, createdAt: string }> } | null, workflowVersions: { edges: Array<{ node: { id: string, version: number, createdAt: string, definition: unknown } }> } | null };

export type StartRunMutationVariables = Exact<{
  workflowId: string | number;
  input?: unknown;
}>;


export type StartRunMutation = { startExecution:
    | { __typename: 'BackpressureError', retryAfter: number, code: string, message: string }
    | { __typename: 'ConflictError', code: string, message: string }
    | { __typename: 'NotFoundError', code: string, message: string }
    | { __typename: 'StartExecutionPayload', execution: { id: string } }
    | { __typename: 'ValidationError', code: string, message: string, problems: Array<{ path: string, message: string, nodeId: string | null, edge: number | null }> }
   };

export type CreateTriggerMutationVariables = Exact<{
  workflowId: string | number;
  type: TriggerKind;
  config?: unknown;
  enabled: boolean;
}>;


export type CreateTriggerMutation = { createTrigger:
    | { __typename: 'CreateTriggerPayload', secret: string | null, trigger: { id: string } }
    | { __typename: 'NotFoundError', code: string, message: string }
    | { __typename: 'ValidationError', code: string, message: string, problems: Array<{ path: string, message: string, nodeId: string | null, edge: number | null }> }
   };

export type UpdateTriggerMutationVariables = Exact<{
  id: string | number;
  enabled?: boolean | null | undefined;
  config?: unknown;
}>;


export type UpdateTriggerMutation = { updateTrigger:
    | { __typename: 'ConflictError', code: string, message: string }
    | { __typename: 'NotFoundError', code: string, message: string }
    | { __typename: 'TriggerPayload', trigger: { id: string, enabled: boolean, config: unknown } }
    | { __typename: 'ValidationError', code: string, message: string, problems: Array<{ path: string, message: string, nodeId: string | null, edge: number | null }> }
   };

export type DeleteTriggerMutationVariables = Exact<{
  id: string | number;
}>;


export type DeleteTriggerMutation = { deleteTrigger:
    | { __typename: 'DeletedPayload' }
    | { __typename: 'NotFoundError', code: string, message: string }
   };

export type RotateTriggerSecretMutationVariables = Exact<{
  id: string | number;
}>;


export type RotateTriggerSecretMutation = { rotateTriggerSecret:
    | { __typename: 'ConflictError', code: string, message: string }
    | { __typename: 'CreateTriggerPayload', secret: string | null, trigger: { id: string } }
    | { __typename: 'NotFoundError', code: string, message: string }
   };

export type WorkflowNamesQueryVariables = Exact<{ [key: string]: never; }>;


export type WorkflowNamesQuery = { workflows: { edges: Array<{ node: { id: string, name: string, triggers: Array<{ id: string, type: TriggerKind }> } }> } };

export class TypedDocumentString<TResult, TVariables>
  extends String
  implements DocumentTypeDecoration<TResult, TVariables>
{
  __apiType?: NonNullable<DocumentTypeDecoration<TResult, TVariables>['__apiType']>;
  private value: string;
  public __meta__?: Record<string, any> | undefined;

  constructor(value: string, __meta__?: Record<string, any> | undefined) {
    super(value);
    this.value = value;
    this.__meta__ = __meta__;
  }

  override toString(): string & DocumentTypeDecoration<TResult, TVariables> {
    return this.value;
  }
}
export const StepFieldsFragmentDoc = new TypedDocumentString(`
    fragment StepFields on StepExecution {
  id
  nodeId
  nodeType
  status
  attempt
  input
  output
  error
  queuedAt
  startedAt
  finishedAt
  durationMs
}
    `, {"fragmentName":"StepFields"}) as unknown as TypedDocumentString<StepFieldsFragment, unknown>;
export const ExecutionSummaryFragmentDoc = new TypedDocumentString(`
    fragment ExecutionSummary on Execution {
  id
  workflowId
  workflowVersion
  status
  createdAt
  startedAt
  finishedAt
  durationMs
  lastSequence
  error
  workflow {
    id
    name
  }
}
    `, {"fragmentName":"ExecutionSummary"}) as unknown as TypedDocumentString<ExecutionSummaryFragment, unknown>;
export const UserErrorFieldsFragmentDoc = new TypedDocumentString(`
    fragment UserErrorFields on UserError {
  __typename
  code
  message
  ... on ValidationError {
    problems {
      path
      message
      nodeId
      edge
    }
  }
  ... on BackpressureError {
    retryAfter
  }
}
    `, {"fragmentName":"UserErrorFields"}) as unknown as TypedDocumentString<UserErrorFieldsFragment, unknown>;
export const EditorWorkflowDocument = {"__meta__":{"hash":"215cdc68262ad20fe2f72cbec91f95efceac228516e280aa9999647a501c6099"}} as unknown as TypedDocumentString<EditorWorkflowQuery, EditorWorkflowQueryVariables>;
export const ValidateDraftDocument = {"__meta__":{"hash":"a48de555ea30910bac93b01d19aff21fe1d8b90a584e220195703e183def5a17"}} as unknown as TypedDocumentString<ValidateDraftQuery, ValidateDraftQueryVariables>;
export const CreateDraftDocument = {"__meta__":{"hash":"5ff449f4f57f92a37a1869652c11931648c1567bab72d3e55c23dbba48ca15ea"}} as unknown as TypedDocumentString<CreateDraftMutation, CreateDraftMutationVariables>;
export const SaveDraftDocument = {"__meta__":{"hash":"7bddcbf3edcf7bcebc1a83d02a9a1dbe2690588e8d37f1c5e593205444245b6c"}} as unknown as TypedDocumentString<SaveDraftMutation, SaveDraftMutationVariables>;
export const NodeTypesDocument = {"__meta__":{"hash":"c154aa901f75af3e07f5301911875892c9920e2453fe25b799bf38ad81b158c6"}} as unknown as TypedDocumentString<NodeTypesQuery, NodeTypesQueryVariables>;
export const CheckExpressionDocument = {"__meta__":{"hash":"87c355162ea59293103592d91dadbc03ea3911d32ff871635af7c0fe213e8de8"}} as unknown as TypedDocumentString<CheckExpressionQuery, CheckExpressionQueryVariables>;
export const OverviewDocument = {"__meta__":{"hash":"630224f0519e50db128619c07b6b10c2515fc194fd2ff09add9bc16f3a6ecbc4"}} as unknown as TypedDocumentString<OverviewQuery, OverviewQueryVariables>;
export const QueueLiveDocument = {"__meta__":{"hash":"c378822dd0da0fa2a766e5c99422b8d08f3c3b452283f2beacb3cbdc4eadbd78"}} as unknown as TypedDocumentString<QueueLiveSubscription, QueueLiveSubscriptionVariables>;
export const DeadLettersDocument = {"__meta__":{"hash":"099c0731f3217155220de29ecebd293800a32586f1d6fd486e44c4e5e8fc335f"}} as unknown as TypedDocumentString<DeadLettersQuery, DeadLettersQueryVariables>;
export const RedriveDocument = {"__meta__":{"hash":"688ad27e7ee1ac5a266a01b1f3eb20fa0f7b28e1f721e9fc9212e852c0599400"}} as unknown as TypedDocumentString<RedriveMutation, RedriveMutationVariables>;
export const AuditDocument = {"__meta__":{"hash":"a257b2707840dc091861d409fe3d624f792b26459592d91350598358e55085db"}} as unknown as TypedDocumentString<AuditQuery, AuditQueryVariables>;
export const CreateApiKeyDocument = {"__meta__":{"hash":"9f0e040ce7d620a69e6875afc0bd0b11855040b9d18555bc1b6481a014d45653"}} as unknown as TypedDocumentString<CreateApiKeyMutation, CreateApiKeyMutationVariables>;
export const RevokeApiKeyDocument = {"__meta__":{"hash":"28a6ae1f1621841d0c0cd16c73fb9eba18174e9e1731257928f576c9130ec6a0"}} as unknown as TypedDocumentString<RevokeApiKeyMutation, RevokeApiKeyMutationVariables>;
export const ApiKeysDocument = {"__meta__":{"hash":"fb14ca4d601e0d195e2458e06d45262a08c5a59da274ff5056ad3e3941806761"}} as unknown as TypedDocumentString<ApiKeysQuery, ApiKeysQueryVariables>;
export const RunDocument = {"__meta__":{"hash":"05179d4e653b23a2be407272b516b99b692a69498d17d316e4814864ddab7b74"}} as unknown as TypedDocumentString<RunQuery, RunQueryVariables>;
export const RunEventsDocument = {"__meta__":{"hash":"ea6e92e3acd102b0433d88d80cf5cc060425a7aab4f927103aba90e5f0341a93"}} as unknown as TypedDocumentString<RunEventsQuery, RunEventsQueryVariables>;
export const RunLiveDocument = {"__meta__":{"hash":"8d9b29f274c9510945bf90588417b734dcbacd7c83023c231af98c8ff27190e0"}} as unknown as TypedDocumentString<RunLiveSubscription, RunLiveSubscriptionVariables>;
export const RunsDocument = {"__meta__":{"hash":"3b3ce1e239622a14d28b2d62018247deeb65bf88f4b09c49fe385baa4f75af5d"}} as unknown as TypedDocumentString<RunsQuery, RunsQueryVariables>;
export const RunsFeedDocument = {"__meta__":{"hash":"83b7c95910412f4619f0e78c41b278d8be9353def09e1aad67408aa4b54a0d0e"}} as unknown as TypedDocumentString<RunsFeedSubscription, RunsFeedSubscriptionVariables>;
export const CancelRunDocument = {"__meta__":{"hash":"31a49f11e006cab3bc933844846500aa15de06f1f5f72fb24b8adbf036663a60"}} as unknown as TypedDocumentString<CancelRunMutation, CancelRunMutationVariables>;
export const RetryRunDocument = {"__meta__":{"hash":"3ba2ef42f59b8dabd414b99bfd619bb2f2dc353de667af2945bb42e2d95aff70"}} as unknown as TypedDocumentString<RetryRunMutation, RetryRunMutationVariables>;
export const WorkflowsDocument = {"__meta__":{"hash":"73be5d7cdcf33e23795c76653a38b5fdcd2c684c0d6d3976795890c8e57eea36"}} as unknown as TypedDocumentString<WorkflowsQuery, WorkflowsQueryVariables>;
export const WorkflowPageDocument = {"__meta__":{"hash":"bd684b37fe47dbeacfecf45804d5cb74e052197ccceb76d9f38f393544926786"}} as unknown as TypedDocumentString<WorkflowPageQuery, WorkflowPageQueryVariables>;
export const StartRunDocument = {"__meta__":{"hash":"f403fa62d8533c07cb50b8704387e09fa73dabcb34df87eca78b1c692a44d41b"}} as unknown as TypedDocumentString<StartRunMutation, StartRunMutationVariables>;
export const CreateTriggerDocument = {"__meta__":{"hash":"e74f200fccad40fd6a97e445ccdbdcce63e7d94e6742e047094f663142f452c1"}} as unknown as TypedDocumentString<CreateTriggerMutation, CreateTriggerMutationVariables>;
export const UpdateTriggerDocument = {"__meta__":{"hash":"f1856ec224c5da16fbab0737af247db537e03339cacd314fb10598ae87f5bcbc"}} as unknown as TypedDocumentString<UpdateTriggerMutation, UpdateTriggerMutationVariables>;
export const DeleteTriggerDocument = {"__meta__":{"hash":"9bfe1286fdf7a6dd5a42a320a1afb204468bf806e3262253c5cd9d134364b22f"}} as unknown as TypedDocumentString<DeleteTriggerMutation, DeleteTriggerMutationVariables>;
export const RotateTriggerSecretDocument = {"__meta__":{"hash":"5052d59fca5bfed7d400a50a022adf34d81ee6e267a761d0c8717e21924aef22"}} as unknown as TypedDocumentString<RotateTriggerSecretMutation, RotateTriggerSecretMutationVariables>;
export const WorkflowNamesDocument = {"__meta__":{"hash":"d483d35210c97cb91a10ce42aaf5cd5bcb20a01b96ecb3dbe628cbcd9718874a"}} as unknown as TypedDocumentString<WorkflowNamesQuery, WorkflowNamesQueryVariables>;