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


export type NodeTypesQuery = { nodeTypes: Array<{ type: string, label: string, description: string, dataSchema: unknown, hasTarget: boolean, hasSource: boolean, sourceHandles: Array<string>, maxOutgoing: number | null }> };

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
}>;


export type CreateApiKeyMutation = { createApiKey:
    | { __typename: 'CreateApiKeyPayload', secret: string, apiKey: { id: string, name: string, prefix: string, createdAt: string } }
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


export type ApiKeysQuery = { apiKeys: { edges: Array<{ node: { id: string, name: string, prefix: string, createdAt: string, revokedAt: string | null } }> } };

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
export const EditorWorkflowDocument = new TypedDocumentString(`
    query EditorWorkflow($id: ID!) {
  workflow(id: $id) {
    id
    name
    description
    version
    definition
    updatedAt
  }
  workflowVersions(workflowId: $id, first: 100) {
    edges {
      node {
        id
        version
        createdAt
        definition
        message
        author
      }
    }
  }
}
    `) as unknown as TypedDocumentString<EditorWorkflowQuery, EditorWorkflowQueryVariables>;
export const ValidateDraftDocument = new TypedDocumentString(`
    query ValidateDraft($definition: JSON!) {
  validateWorkflow(definition: $definition) {
    valid
    problems {
      path
      message
      nodeId
      edge
    }
  }
}
    `) as unknown as TypedDocumentString<ValidateDraftQuery, ValidateDraftQueryVariables>;
export const CreateDraftDocument = new TypedDocumentString(`
    mutation CreateDraft($input: CreateWorkflowInput!) {
  createWorkflow(input: $input) {
    __typename
    ... on WorkflowPayload {
      workflow {
        id
        version
      }
    }
    ... on UserError {
      ...UserErrorFields
    }
  }
}
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
}`) as unknown as TypedDocumentString<CreateDraftMutation, CreateDraftMutationVariables>;
export const SaveDraftDocument = new TypedDocumentString(`
    mutation SaveDraft($id: ID!, $input: UpdateWorkflowInput!) {
  updateWorkflow(id: $id, input: $input) {
    __typename
    ... on WorkflowPayload {
      workflow {
        id
        version
        definition
      }
    }
    ... on ConflictError {
      currentVersion
    }
    ... on UserError {
      ...UserErrorFields
    }
  }
}
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
}`) as unknown as TypedDocumentString<SaveDraftMutation, SaveDraftMutationVariables>;
export const NodeTypesDocument = new TypedDocumentString(`
    query NodeTypes {
  nodeTypes {
    type
    label
    description
    dataSchema
    hasTarget
    hasSource
    sourceHandles
    maxOutgoing
  }
}
    `) as unknown as TypedDocumentString<NodeTypesQuery, NodeTypesQueryVariables>;
export const CheckExpressionDocument = new TypedDocumentString(`
    query CheckExpression($expression: String!, $kind: ExpressionKind!) {
  checkExpression(expression: $expression, kind: $kind) {
    valid
    problems {
      message
      position
    }
  }
}
    `) as unknown as TypedDocumentString<CheckExpressionQuery, CheckExpressionQueryVariables>;
export const OverviewDocument = new TypedDocumentString(`
    query Overview {
  health {
    status
    database
    eventsListener
  }
  queueStats {
    queued
    scheduled
    running
    deadLetters
    globalDepth
    maxDepth
    sheddingLoad
  }
  metrics(windowSeconds: 3600) {
    executionsByStatus {
      status
      count
    }
    stepsCompletedLastMinute
  }
  workers {
    id
    hostname
    pid
    concurrency
    running
    startedAt
    lastHeartbeatAt
    alive
  }
  series: metricsSeries(windowSeconds: 3600, bucketSeconds: 120) {
    bucketSeconds
    sampled
    buckets {
      start
      executionsStarted
      executionsCompleted
      executionsFailed
      stepsCompleted
      stepDurationP50Ms
      stepDurationP95Ms
    }
  }
  failures: executions(status: FAILED, first: 8) {
    edges {
      node {
        ...ExecutionSummary
      }
    }
  }
}
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
}`) as unknown as TypedDocumentString<OverviewQuery, OverviewQueryVariables>;
export const QueueLiveDocument = new TypedDocumentString(`
    subscription QueueLive {
  queueStatsUpdated {
    queued
    scheduled
    running
    deadLetters
    globalDepth
    maxDepth
    sheddingLoad
  }
}
    `) as unknown as TypedDocumentString<QueueLiveSubscription, QueueLiveSubscriptionVariables>;
export const DeadLettersDocument = new TypedDocumentString(`
    query DeadLetters($executionId: ID, $includeRedriven: Boolean!, $first: Int, $after: String) {
  deadLetters(
    executionId: $executionId
    includeRedriven: $includeRedriven
    first: $first
    after: $after
  ) {
    edges {
      cursor
      node {
        id
        executionId
        nodeId
        attempts
        error
        payload
        createdAt
        redrivenAt
      }
    }
    pageInfo {
      hasNextPage
      endCursor
    }
  }
}
    `) as unknown as TypedDocumentString<DeadLettersQuery, DeadLettersQueryVariables>;
export const RedriveDocument = new TypedDocumentString(`
    mutation Redrive($id: ID!) {
  redriveDeadLetter(id: $id) {
    __typename
    ... on DeadLetterPayload {
      deadLetter {
        id
        redrivenAt
      }
    }
    ... on UserError {
      ...UserErrorFields
    }
  }
}
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
}`) as unknown as TypedDocumentString<RedriveMutation, RedriveMutationVariables>;
export const AuditDocument = new TypedDocumentString(`
    query Audit($actor: String, $action: String, $entityType: String, $entityId: String, $since: DateTime, $until: DateTime, $first: Int, $after: String) {
  auditLog(
    actor: $actor
    action: $action
    entityType: $entityType
    entityId: $entityId
    since: $since
    until: $until
    first: $first
    after: $after
  ) {
    edges {
      cursor
      node {
        id
        actor
        action
        entityType
        entityId
        data
        at
      }
    }
    pageInfo {
      hasNextPage
      endCursor
    }
  }
}
    `) as unknown as TypedDocumentString<AuditQuery, AuditQueryVariables>;
export const CreateApiKeyDocument = new TypedDocumentString(`
    mutation CreateApiKey($name: String!) {
  createApiKey(name: $name) {
    __typename
    ... on CreateApiKeyPayload {
      secret
      apiKey {
        id
        name
        prefix
        createdAt
      }
    }
    ... on UserError {
      ...UserErrorFields
    }
  }
}
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
}`) as unknown as TypedDocumentString<CreateApiKeyMutation, CreateApiKeyMutationVariables>;
export const RevokeApiKeyDocument = new TypedDocumentString(`
    mutation RevokeApiKey($id: ID!) {
  revokeApiKey(id: $id) {
    __typename
    ... on ApiKeyPayload {
      apiKey {
        id
        revokedAt
      }
    }
    ... on UserError {
      ...UserErrorFields
    }
  }
}
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
}`) as unknown as TypedDocumentString<RevokeApiKeyMutation, RevokeApiKeyMutationVariables>;
export const ApiKeysDocument = new TypedDocumentString(`
    query ApiKeys($first: Int, $after: String) {
  apiKeys(first: $first, after: $after) {
    edges {
      node {
        id
        name
        prefix
        createdAt
        revokedAt
      }
    }
  }
}
    `) as unknown as TypedDocumentString<ApiKeysQuery, ApiKeysQueryVariables>;
export const RunDocument = new TypedDocumentString(`
    query Run($id: ID!) {
  execution(id: $id) {
    ...ExecutionSummary
    input
    output
    definition
    retriedFromId
    steps {
      ...StepFields
    }
    workflow {
      id
      name
      version
    }
  }
}
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
}`) as unknown as TypedDocumentString<RunQuery, RunQueryVariables>;
export const RunEventsDocument = new TypedDocumentString(`
    query RunEvents($id: ID!) {
  execution(id: $id) {
    id
    timeline {
      sequence
      kind
      at
      status
      nodeId
      attempt
      data
    }
  }
}
    `) as unknown as TypedDocumentString<RunEventsQuery, RunEventsQueryVariables>;
export const RunLiveDocument = new TypedDocumentString(`
    subscription RunLive($id: ID!) {
  executionUpdated(id: $id) {
    executionId
    sequence
    kind
    at
    status
    nodeId
    attempt
    data
    step {
      ...StepFields
    }
    steps {
      ...StepFields
    }
  }
}
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
}`) as unknown as TypedDocumentString<RunLiveSubscription, RunLiveSubscriptionVariables>;
export const RunsDocument = new TypedDocumentString(`
    query Runs($workflowId: ID, $triggerId: ID, $status: ExecutionStatus, $first: Int, $after: String) {
  executions(
    workflowId: $workflowId
    triggerId: $triggerId
    status: $status
    first: $first
    after: $after
  ) {
    edges {
      cursor
      node {
        ...ExecutionSummary
      }
    }
    pageInfo {
      hasNextPage
      endCursor
    }
  }
}
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
}`) as unknown as TypedDocumentString<RunsQuery, RunsQueryVariables>;
export const RunsFeedDocument = new TypedDocumentString(`
    subscription RunsFeed($workflowId: ID) {
  executionEvents(workflowId: $workflowId) {
    executionId
    workflowId
    sequence
    kind
    at
    status
    execution {
      ...ExecutionSummary
    }
  }
}
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
}`) as unknown as TypedDocumentString<RunsFeedSubscription, RunsFeedSubscriptionVariables>;
export const CancelRunDocument = new TypedDocumentString(`
    mutation CancelRun($id: ID!) {
  cancelExecution(id: $id) {
    __typename
    ... on ExecutionPayload {
      execution {
        ...ExecutionSummary
      }
    }
    ... on UserError {
      ...UserErrorFields
    }
  }
}
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
}`) as unknown as TypedDocumentString<CancelRunMutation, CancelRunMutationVariables>;
export const RetryRunDocument = new TypedDocumentString(`
    mutation RetryRun($id: ID!) {
  retryExecution(id: $id) {
    __typename
    ... on StartExecutionPayload {
      execution {
        ...ExecutionSummary
      }
    }
    ... on UserError {
      ...UserErrorFields
    }
  }
}
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
}`) as unknown as TypedDocumentString<RetryRunMutation, RetryRunMutationVariables>;
export const WorkflowsDocument = new TypedDocumentString(`
    query Workflows($first: Int, $after: String) {
  workflows(first: $first, after: $after) {
    edges {
      cursor
      node {
        id
        name
        description
        version
        updatedAt
        maxConcurrency
        triggers {
          id
          type
          enabled
        }
        executions(first: 20) {
          edges {
            node {
              id
              status
              createdAt
            }
          }
        }
      }
    }
    pageInfo {
      hasNextPage
      endCursor
    }
  }
}
    `) as unknown as TypedDocumentString<WorkflowsQuery, WorkflowsQueryVariables>;
export const WorkflowPageDocument = new TypedDocumentString(`
    query WorkflowPage($id: ID!) {
  workflow(id: $id) {
    id
    name
    description
    version
    createdAt
    updatedAt
    definition
    maxConcurrency
    triggers {
      id
      type
      enabled
      config
      webhookUrl
      nextRunAt
      nextFireTimes(count: 5)
      lastFiredAt
      createdAt
    }
  }
  workflowVersions(workflowId: $id, first: 50) {
    edges {
      node {
        id
        version
        createdAt
        definition
      }
    }
  }
}
    `) as unknown as TypedDocumentString<WorkflowPageQuery, WorkflowPageQueryVariables>;
export const StartRunDocument = new TypedDocumentString(`
    mutation StartRun($workflowId: ID!, $input: JSON) {
  startExecution(workflowId: $workflowId, input: $input) {
    __typename
    ... on StartExecutionPayload {
      execution {
        id
      }
    }
    ... on UserError {
      ...UserErrorFields
    }
  }
}
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
}`) as unknown as TypedDocumentString<StartRunMutation, StartRunMutationVariables>;
export const CreateTriggerDocument = new TypedDocumentString(`
    mutation CreateTrigger($workflowId: ID!, $type: TriggerKind!, $config: JSON, $enabled: Boolean!) {
  createTrigger(
    workflowId: $workflowId
    type: $type
    config: $config
    enabled: $enabled
  ) {
    __typename
    ... on CreateTriggerPayload {
      secret
      trigger {
        id
      }
    }
    ... on UserError {
      ...UserErrorFields
    }
  }
}
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
}`) as unknown as TypedDocumentString<CreateTriggerMutation, CreateTriggerMutationVariables>;
export const UpdateTriggerDocument = new TypedDocumentString(`
    mutation UpdateTrigger($id: ID!, $enabled: Boolean, $config: JSON) {
  updateTrigger(id: $id, enabled: $enabled, config: $config) {
    __typename
    ... on TriggerPayload {
      trigger {
        id
        enabled
        config
      }
    }
    ... on UserError {
      ...UserErrorFields
    }
  }
}
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
}`) as unknown as TypedDocumentString<UpdateTriggerMutation, UpdateTriggerMutationVariables>;
export const DeleteTriggerDocument = new TypedDocumentString(`
    mutation DeleteTrigger($id: ID!) {
  deleteTrigger(id: $id) {
    __typename
    ... on UserError {
      ...UserErrorFields
    }
  }
}
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
}`) as unknown as TypedDocumentString<DeleteTriggerMutation, DeleteTriggerMutationVariables>;
export const RotateTriggerSecretDocument = new TypedDocumentString(`
    mutation RotateTriggerSecret($id: ID!) {
  rotateTriggerSecret(id: $id) {
    __typename
    ... on CreateTriggerPayload {
      secret
      trigger {
        id
      }
    }
    ... on UserError {
      ...UserErrorFields
    }
  }
}
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
}`) as unknown as TypedDocumentString<RotateTriggerSecretMutation, RotateTriggerSecretMutationVariables>;
export const WorkflowNamesDocument = new TypedDocumentString(`
    query WorkflowNames {
  workflows(first: 200) {
    edges {
      node {
        id
        name
        triggers {
          id
          type
        }
      }
    }
  }
}
    `) as unknown as TypedDocumentString<WorkflowNamesQuery, WorkflowNamesQueryVariables>;