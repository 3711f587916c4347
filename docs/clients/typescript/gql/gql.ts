/* eslint-disable */
import * as types from './graphql.js';



/**
 * Map of all GraphQL operations in the project.
 *
 * This map has several performance disadvantages:
 * 1. It is not tree-shakeable, so it will include all operations in the project.
 * 2. It is not minifiable, so the string of a GraphQL query will be multiple times inside the bundle.
 * 3. It does not support dead code elimination, so it will add unused operations.
 *
 * Therefore it is highly recommended to use the babel or swc plugin for production.
 * Learn more about it here: https://the-guild.dev/graphql/codegen/plugins/presets/preset-client#reducing-bundle-size
 */
type Documents = {
    "fragment RunEvent on ExecutionEvent {\n  sequence\n  kind\n  status\n  at\n  nodeId\n  attempt\n}\n\nfragment Refusal on UserError {\n  __typename\n  code\n  message\n  ... on ValidationError {\n    problems {\n      path\n      message\n    }\n  }\n  ... on BackpressureError {\n    retryAfter\n  }\n}\n\nquery FindWorkflows {\n  workflows(first: 100) {\n    edges {\n      node {\n        id\n        name\n      }\n    }\n  }\n}\n\nmutation CreateWorkflow($input: CreateWorkflowInput!) {\n  createWorkflow(input: $input) {\n    __typename\n    ... on WorkflowPayload {\n      workflow {\n        id\n        name\n      }\n    }\n    ... on UserError {\n      ...Refusal\n    }\n  }\n}\n\nmutation StartExecution($workflowId: ID!, $input: JSON) {\n  startExecution(workflowId: $workflowId, input: $input) {\n    __typename\n    ... on StartExecutionPayload {\n      execution {\n        id\n        status\n      }\n    }\n    ... on UserError {\n      ...Refusal\n    }\n  }\n}\n\nsubscription Follow($id: ID!) {\n  executionUpdated(id: $id) {\n    ...RunEvent\n  }\n}\n\nquery History($id: ID!) {\n  execution(id: $id) {\n    timeline {\n      ...RunEvent\n    }\n  }\n}\n\nquery Outcome($id: ID!) {\n  execution(id: $id) {\n    id\n    status\n    output\n    error\n  }\n}": typeof types.RunEventFragmentDoc,
};
const documents: Documents = {
    "fragment RunEvent on ExecutionEvent {\n  sequence\n  kind\n  status\n  at\n  nodeId\n  attempt\n}\n\nfragment Refusal on UserError {\n  __typename\n  code\n  message\n  ... on ValidationError {\n    problems {\n      path\n      message\n    }\n  }\n  ... on BackpressureError {\n    retryAfter\n  }\n}\n\nquery FindWorkflows {\n  workflows(first: 100) {\n    edges {\n      node {\n        id\n        name\n      }\n    }\n  }\n}\n\nmutation CreateWorkflow($input: CreateWorkflowInput!) {\n  createWorkflow(input: $input) {\n    __typename\n    ... on WorkflowPayload {\n      workflow {\n        id\n        name\n      }\n    }\n    ... on UserError {\n      ...Refusal\n    }\n  }\n}\n\nmutation StartExecution($workflowId: ID!, $input: JSON) {\n  startExecution(workflowId: $workflowId, input: $input) {\n    __typename\n    ... on StartExecutionPayload {\n      execution {\n        id\n        status\n      }\n    }\n    ... on UserError {\n      ...Refusal\n    }\n  }\n}\n\nsubscription Follow($id: ID!) {\n  executionUpdated(id: $id) {\n    ...RunEvent\n  }\n}\n\nquery History($id: ID!) {\n  execution(id: $id) {\n    timeline {\n      ...RunEvent\n    }\n  }\n}\n\nquery Outcome($id: ID!) {\n  execution(id: $id) {\n    id\n    status\n    output\n    error\n  }\n}": types.RunEventFragmentDoc,
};

/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "fragment RunEvent on ExecutionEvent {\n  sequence\n  kind\n  status\n  at\n  nodeId\n  attempt\n}\n\nfragment Refusal on UserError {\n  __typename\n  code\n  message\n  ... on ValidationError {\n    problems {\n      path\n      message\n    }\n  }\n  ... on BackpressureError {\n    retryAfter\n  }\n}\n\nquery FindWorkflows {\n  workflows(first: 100) {\n    edges {\n      node {\n        id\n        name\n      }\n    }\n  }\n}\n\nmutation CreateWorkflow($input: CreateWorkflowInput!) {\n  createWorkflow(input: $input) {\n    __typename\n    ... on WorkflowPayload {\n      workflow {\n        id\n        name\n      }\n    }\n    ... on UserError {\n      ...Refusal\n    }\n  }\n}\n\nmutation StartExecution($workflowId: ID!, $input: JSON) {\n  startExecution(workflowId: $workflowId, input: $input) {\n    __typename\n    ... on StartExecutionPayload {\n      execution {\n        id\n        status\n      }\n    }\n    ... on UserError {\n      ...Refusal\n    }\n  }\n}\n\nsubscription Follow($id: ID!) {\n  executionUpdated(id: $id) {\n    ...RunEvent\n  }\n}\n\nquery History($id: ID!) {\n  execution(id: $id) {\n    timeline {\n      ...RunEvent\n    }\n  }\n}\n\nquery Outcome($id: ID!) {\n  execution(id: $id) {\n    id\n    status\n    output\n    error\n  }\n}"): typeof import('./graphql.js').RunEventFragmentDoc;


export function graphql(source: string) {
  return (documents as any)[source] ?? {};
}
