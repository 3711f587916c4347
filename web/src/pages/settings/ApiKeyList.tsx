import { Empty, ErrorBox, Loading } from "../../components/States";
import { Time } from "../../components/Time";
import { ApiKeysDocument } from "../../gql/graphql";
import { useGraphQL } from "../../lib/query";
import { TableScroll } from "../../components/TableScroll";

export function ApiKeyList({ version, onRevoke }: { version: number; onRevoke: (id: string) => void }) {
  const keys = useGraphQL(["api-keys", version], ApiKeysDocument, { first: 200 });
  if (keys.isPending) return <Loading what="keys" />;
  if (keys.error) return <ErrorBox error={keys.error} />;
  const rows = keys.data.apiKeys.edges.map((e) => e.node);
  if (rows.length === 0) return <Empty>No keys.</Empty>;
  return (
    <TableScroll label="API keys">
    <table className="table" aria-label="API keys">
      <thead>
        <tr>
          <th scope="col">Name</th>
          <th scope="col">Prefix</th>
          <th scope="col">Role</th>
          <th scope="col">Created</th>
          <th scope="col">State</th>
          <th scope="col">Actions</th>
        </tr>
      </thead>
      <tbody>
        {rows.map((k) => (
          <tr key={k.id} data-key-id={k.id}>
            <td>{k.name}</td>
            <td className="mono nowrap">{k.prefix}…</td>
            <td>{k.role.toLowerCase()}</td>
            <td>
              <Time iso={k.createdAt} />
            </td>
            <td>{k.revokedAt ? <>revoked <Time iso={k.revokedAt} /></> : "active"}</td>
            <td>
              {!k.revokedAt && (
                <button type="button" className="danger" onClick={() => onRevoke(k.id)}>
                  Revoke
                </button>
              )}
            </td>
          </tr>
        ))}
      </tbody>
    </table>
    </TableScroll>
  );
}
