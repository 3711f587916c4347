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

export type RunEventFragment = { sequence: number, kind: string, status: string, at: string, nodeId: string | null, attempt: number | null };

type Refusal_BackpressureError_Fragment = { __typename: 'BackpressureError', retryAfter: number, code: string, message: string };

type Refusal_ConflictError_Fragment = { __typename: 'ConflictError', code: string, message: string };

type Refusal_NotFoundError_Fragment = { __typename: 'NotFoundError', code: string, message: string };

type Refusal_ValidationError_Fragment = { __typename: 'ValidationError', code: string, message: string, problems: Array<{ path: string, message: string }> };

export type RefusalFragment =
  | Refusal_BackpressureError_Fragment
  | Refusal_ConflictError_Fragment
  | Refusal_NotFoundError_Fragment
  | Refusal_ValidationError_Fragment
;

export type FindWorkflowsQueryVariables = Exact<{ [key: string]: never; }>;


export type FindWorkflowsQuery = { workflows: { edges: Array<{ node: { id: string, name: string } }> } };

export type CreateWorkflowMutationVariables = Exact<{
  input: CreateWorkflowInput;
}>;


export type CreateWorkflowMutation = { createWorkflow:
    | { __typename: 'ValidationError', code: string, message: string, problems: Array<{ path: string, message: string }> }
    | { __typename: 'WorkflowPayload', workflow: { id: string, name: string } }
   };

export type StartExecutionMutationVariables = Exact<{
  workflowId: string | number;
  input?: unknown;
}>;


export type StartExecutionMutation = { startExecution:
    | { __typename: 'BackpressureError', retryAfter: number, code: string, message: string }
    | { __typename: 'ConflictError', code: string, message: string }
    | { __typename: 'NotFoundError', code: string, message: string }
    | { __typename: 'StartExecutionPayload', execution: { id: string, status: ExecutionStatus } }
    | { __typename: 'ValidationError', code: string, message: string, problems: Array<{ path: string, message: string }> }
   };

export type FollowSubscriptionVariables = Exact<{
  id: string | number;
}>;


export type FollowSubscription = { executionUpdated: { sequence: number, kind: string, status: string, at: string, nodeId: string | null, attempt: number | null } };

export type HistoryQueryVariables = Exact<{
  id: string | number;
}>;


export type HistoryQuery = { execution: { timeline: Array<{ sequence: number, kind: string, status: string, at: string, nodeId: string | null, attempt: number | null }> } | null };

export type OutcomeQueryVariables = Exact<{
  id: string | number;
}>;


export type OutcomeQuery = { execution: { id: string, status: ExecutionStatus, output: unknown, error: unknown } | null };

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
export const RunEventFragmentDoc = new TypedDocumentString(`
    fragment RunEvent on ExecutionEvent {
  sequence
  kind
  status
  at
  nodeId
  attempt
}
    `, {"fragmentName":"RunEvent"}) as unknown as TypedDocumentString<RunEventFragment, unknown>;
export const RefusalFragmentDoc = new TypedDocumentString(`
    fragment Refusal on UserError {
  __typename
  code
  message
  ... on ValidationError {
    problems {
      path
      message
    }
  }
  ... on BackpressureError {
    retryAfter
  }
}
    `, {"fragmentName":"Refusal"}) as unknown as TypedDocumentString<RefusalFragment, unknown>;
export const FindWorkflowsDocument = new TypedDocumentString(`
    query FindWorkflows {
  workflows(first: 100) {
    edges {
      node {
        id
        name
      }
    }
  }
}
    `) as unknown as TypedDocumentString<FindWorkflowsQuery, FindWorkflowsQueryVariables>;
export const CreateWorkflowDocument = new TypedDocumentString(`
    mutation CreateWorkflow($input: CreateWorkflowInput!) {
  createWorkflow(input: $input) {
    __typename
    ... on WorkflowPayload {
      workflow {
        id
        name
      }
    }
    ... on UserError {
      ...Refusal
    }
  }
}
    fragment Refusal on UserError {
  __typename
  code
  message
  ... on ValidationError {
    problems {
      path
      message
    }
  }
  ... on BackpressureError {
    retryAfter
  }
}`) as unknown as TypedDocumentString<CreateWorkflowMutation, CreateWorkflowMutationVariables>;
export const StartExecutionDocument = new TypedDocumentString(`
    mutation StartExecution($workflowId: ID!, $input: JSON) {
  startExecution(workflowId: $workflowId, input: $input) {
    __typename
    ... on StartExecutionPayload {
      execution {
        id
        status
      }
    }
    ... on UserError {
      ...Refusal
    }
  }
}
    fragment Refusal on UserError {
  __typename
  code
  message
  ... on ValidationError {
    problems {
      path
      message
    }
  }
  ... on BackpressureError {
    retryAfter
  }
}`) as unknown as TypedDocumentString<StartExecutionMutation, StartExecutionMutationVariables>;
export const FollowDocument = new TypedDocumentString(`
    subscription Follow($id: ID!) {
  executionUpdated(id: $id) {
    ...RunEvent
  }
}
    fragment RunEvent on ExecutionEvent {
  sequence
  kind
  status
  at
  nodeId
  attempt
}`) as unknown as TypedDocumentString<FollowSubscription, FollowSubscriptionVariables>;
export const HistoryDocument = new TypedDocumentString(`
    query History($id: ID!) {
  execution(id: $id) {
    timeline {
      ...RunEvent
    }
  }
}
    fragment RunEvent on ExecutionEvent {
  sequence
  kind
  status
  at
  nodeId
  attempt
}`) as unknown as TypedDocumentString<HistoryQuery, HistoryQueryVariables>;
export const OutcomeDocument = new TypedDocumentString(`
    query Outcome($id: ID!) {
  execution(id: $id) {
    id
    status
    output
    error
  }
}
    `) as unknown as TypedDocumentString<OutcomeQuery, OutcomeQueryVariables>;