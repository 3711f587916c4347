import { Handle, Position, type Node, type NodeProps } from "@xyflow/react";
import { createContext, memo, useContext } from "react";
import { STATUS_LABEL } from "../../components/Status";
import type { NodeRules } from "./model";

export interface CanvasInfo {
  rules: Record<string, NodeRules>;
  problems: Record<string, string[]>;
  statuses: Record<string, string>;
  /** While comparing versions: each node's mark (compare.ts). */
  diff: Record<string, "added" | "changed" | "removed" | "same">;
}

export const CanvasContext = createContext<CanvasInfo>({ rules: {}, problems: {}, statuses: {}, diff: {} });

/** `raw` is the node's own data; `ghost` marks what a comparison draws that is not in the
 * draft (a removed node, or any node of a read-only comparison of two versions). */
export type EditorNodeData = { nodeType: string; label: string; raw?: Record<string, unknown>; ghost?: boolean };
export type EditorFlowNode = Node<EditorNodeData, "editor">;

export const EditorNodeView = memo(function EditorNodeView({ id, data, selected }: NodeProps<EditorFlowNode>) {
  const { rules, problems, statuses, diff } = useContext(CanvasContext);
  const rule = rules[data.nodeType];
  const own = problems[id] ?? [];
  const status = statuses[id];
  // The plain source handle (for types whose edges carry none), the named ones, then the
  // optional ones (a wait's "timeout"), spread along the bottom edge.
  const named = rule?.sourceHandles ?? [];
  const plain = rule?.hasSource !== false && named.length === 0 ? [null] : [];
  const handles: (string | null)[] = [...plain, ...named, ...(rule?.optionalHandles ?? [])];
  return (
    <div
      className="ed-node"
      data-selected={selected || undefined}
      data-invalid={own.length > 0 || undefined}
      data-status={status}
      data-diff={diff[id]}
      title={own.join("\n") || undefined}
    >
      {rule?.hasTarget !== false && <Handle type="target" position={Position.Top} />}
      <div className="rf-step-head">
        <span className="rf-step-type">{data.nodeType}</span>
        {own.length > 0 && (
          <span className="ed-problems" aria-label={`${own.length} problems`}>
            ⚠ {own.length}
          </span>
        )}
      </div>
      <div className="rf-step-label">{data.label}</div>
      {status && <div className="rf-step-status">{STATUS_LABEL[status] ?? status}</div>}
      {diff[id] && diff[id] !== "same" && <div className="rf-step-status ed-diff">{diff[id]}</div>}
      {handles.map((h, i) =>
        h === null ? (
          <Handle key="" type="source" position={Position.Bottom} style={{ left: `${((i + 1) / (handles.length + 1)) * 100}%` }} />
        ) : (
          <Handle
            key={h}
            id={h}
            type="source"
            position={Position.Bottom}
            style={{ left: `${((i + 1) / (handles.length + 1)) * 100}%` }}
            className={`handle-${h}`}
          >
            <span className="handle-label">{h}</span>
          </Handle>
        ),
      )}
    </div>
  );
});
