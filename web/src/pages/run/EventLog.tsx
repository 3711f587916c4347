import { useMemo, useState } from "react";
import { Time } from "../../components/Time";
import type { EventRow } from "../../lib/fold";
import { TableScroll } from "../../components/TableScroll";
import { Id } from "../../components/Id";

export function EventLog({ events, onSelect }: { events: EventRow[]; onSelect: (nodeId: string) => void }) {
  const kinds = useMemo(() => [...new Set(events.map((e) => e.kind))].sort(), [events]);
  const [hidden, setHidden] = useState<Set<string>>(new Set());
  const shown = events.filter((e) => !hidden.has(e.kind));
  return (
    <div className="event-log">
      <fieldset className="chips">
        <legend>Kinds</legend>
        {kinds.map((k) => (
          <label key={k} className="chip">
            <input
              type="checkbox"
              checked={!hidden.has(k)}
              onChange={() => {
                const next = new Set(hidden);
                if (next.has(k)) next.delete(k);
                else next.add(k);
                setHidden(next);
              }}
            />
            {k}
          </label>
        ))}
      </fieldset>
      <TableScroll label="Event log">
      <table className="table" aria-label="Event log">
        <thead>
          <tr>
            <th scope="col">#</th>
            <th scope="col">Kind</th>
            <th scope="col">Step</th>
            <th scope="col">Attempt</th>
            <th scope="col">At</th>
            <th scope="col">Data</th>
          </tr>
        </thead>
        <tbody>
          {shown.map((e) => (
            <tr key={e.sequence} data-sequence={e.sequence}>
              <td className="mono">{e.sequence}</td>
              <td>{e.kind}</td>
              <td>
                {e.nodeId ? (
                  <button type="button" className="link" onClick={() => onSelect(e.nodeId!)}>
                    <Id id={e.nodeId} full />
                  </button>
                ) : (
                  "–"
                )}
              </td>
              <td>{e.attempt ?? ""}</td>
              <td>
                <Time iso={e.at} />
              </td>
              <td className="mono small">{e.data == null ? "" : JSON.stringify(e.data).slice(0, 200)}</td>
            </tr>
          ))}
        </tbody>
      </table>
      </TableScroll>
    </div>
  );
}
