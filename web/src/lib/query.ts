import { QueryClient, useQuery, type UseQueryResult } from "@tanstack/react-query";
import type { DocumentTypeDecoration } from "@graphql-typed-document-node/core";
import { ApiError, request } from "./api";

export const queryClient = new QueryClient({
  defaultOptions: {
    queries: {
      retry: (count, error) => !(error instanceof ApiError && error.status < 500) && count < 2,
      refetchOnWindowFocus: false,
      staleTime: 5_000,
    },
  },
});

export function useGraphQL<TResult, TVariables>(
  key: readonly unknown[],
  document: DocumentTypeDecoration<TResult, TVariables>,
  variables: TVariables,
  options: { enabled?: boolean; refetchInterval?: number | false } = {},
): UseQueryResult<TResult, Error> {
  return useQuery({
    queryKey: [...key, variables],
    queryFn: ({ signal }) => request(document, variables, signal),
    enabled: options.enabled ?? true,
    refetchInterval: options.refetchInterval ?? false,
  });
}
