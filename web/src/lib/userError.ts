// Mutation results are unions of a payload and the expected failures.

export interface ProblemLike {
  path: string;
  message: string;
  nodeId?: string | null;
  edge?: number | null;
}

export interface UserErrorLike {
  __typename: string;
  code?: string;
  message?: string;
  problems?: ProblemLike[];
  retryAfter?: number;
}

const ERROR_TYPES = new Set(["ValidationError", "NotFoundError", "ConflictError", "BackpressureError"]);

export function asUserError(result: { __typename: string }): UserErrorLike | null {
  return ERROR_TYPES.has(result.__typename) ? (result as UserErrorLike) : null;
}
