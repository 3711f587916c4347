// The run's graph: the pinned definition's nodes coloured by their steps' status, live.
// Read-only; laid out from stored positions or by dagre (in a worker for large graphs).
import {
  Background,
  Controls,
  Handle,
  MiniMap,
  Position,
  ReactFlow,
  type Edge,
  type Node,
  type NodeProps,
} from "@xyflow/react";
import "@xyflow/react/dist/style.css";
import { memo, useMemo, useState } from "react";
import type { Definition } from "../lib/definition";
import { useLayout } from "../lib/useLayout";
import { STATUS_LABEL } from "./Status";

export interface StepView {
  status: string;
  attempt: number;
}

type StepNodeData = {
  nodeId: string;
  nodeType: string;
  label: string;
  status: string;
  attempt: number;
  selected: boolean;
};

type StepNodeType = Node<StepNodeData, "step">;

const StepNode = memo(function StepNode({ data }: NodeProps<StepNodeType>) {
  const isCondition = data.nodeType === "condition";
  return (
    <div className="rf-step" data-status={data.status} data-selected={data.selected || undefined}>
      {data.nodeType !== "start" && <Handle type="target" position={Position.Top} isConnectable={false} />}
      <div className="rf-step-head">
        <span className="rf-step-type">{data.nodeType}</span>
        {data.attempt > 1 && <span className="rf-step-try">try {data.attempt}</span>}
      </div>
      <div className="rf-step-label" title={data.nodeId}>
        {data.label}
      </div>
      <div className="rf-step-status">{STATUS_LABEL[data.status] ?? data.status}</div>
      {data.nodeType !== "end" && !isCondition && (
        <Handle type="source" position={Position.Bottom} isConnectable={false} />
      )}
      {isCondition && (
        <>
          <Handle id="true" type="source" position={Position.Bottom} style={{ left: "30%" }} isConnectable={false} />
          <Handle id="false" type="source" position={Position.Bottom} style={{ left: "70%" }} isConnectable={false} />
        </>
      )}
    </div>
  );
});

const nodeTypes = { step: StepNode };

export function RunGraph({
  definition,
  steps,
  selected,
  onSelect,
  colorMode,
}: {
  definition: Definition;
  steps: Record<string, StepView>;
  selected: string | null;
  onSelect: (nodeId: string | null) => void;
  colorMode: "light" | "dark";
}) {
  const positions = useLayout(definition);
  // Node objects are kept while their step's look is unchanged, so that one event
  // re-renders one node, not the whole graph.
  // (A cache, not state: filling it again from scratch gives the same nodes.)
  const [kept] = useState(() => new Map<string, StepNodeType>());
  const nodes = useMemo<StepNodeType[]>(() => {
    if (!positions) return [];
    const list = definition.nodes.map((n) => {
      const step = steps[n.id];
      const status = step?.status ?? "PENDING";
      const attempt = step?.attempt ?? 0;
      const position = positions[n.id] ?? { x: 0, y: 0 };
      const old = kept.get(n.id);
      if (
        old &&
        old.data.status === status &&
        old.data.attempt === attempt &&
        old.data.selected === (selected === n.id) &&
        old.position === position &&
        old.data.label === (n.label ?? n.id) &&
        old.data.nodeType === n.type
      ) {
        return old;
      }
      const made: StepNodeType = {
        id: n.id,
        type: "step",
        position,
        data: {
          nodeId: n.id,
          nodeType: n.type,
          label: n.label ?? n.id,
          status,
          attempt,
          selected: selected === n.id,
        },
        domAttributes: { "data-status": status } as StepNodeType["domAttributes"],
        ariaLabel: `${n.label ?? n.id}, ${n.type}, ${STATUS_LABEL[status] ?? status}`,
        draggable: false,
        connectable: false,
      };
      kept.set(n.id, made);
      return made;
    });
    return list;
  }, [definition, positions, steps, selected, kept]);
  const edges = useMemo<Edge[]>(
    () =>
      definition.edges.map((e, i) => {
        const targetStatus = steps[e.target]?.status;
        return {
          id: `e${i}-${e.source}-${e.target}`,
          source: e.source,
          target: e.target,
          sourceHandle: e.sourceHandle ?? null,
          label: e.sourceHandle ?? undefined,
          animated: targetStatus === "RUNNING",
          className: targetStatus ? `edge-${targetStatus.toLowerCase()}` : undefined,
        };
      }),
    [definition, steps],
  );
  if (!positions) return <div className="state">Laying out {definition.nodes.length} nodes…</div>;
  return (
    <div
      className="graph"
      data-testid="run-graph"
      onKeyDown={(event) => {
        // A focused node (Tab moves through them) opens its step with Enter or Space.
        if (event.key !== "Enter" && event.key !== " ") return;
        const target = event.target as HTMLElement;
        const id = target.classList.contains("react-flow__node") ? target.dataset.id : undefined;
        if (id) {
          event.preventDefault();
          onSelect(id);
        }
      }}
    >
      <ReactFlow
        nodes={nodes}
        edges={edges}
        nodeTypes={nodeTypes}
        fitView
        minZoom={0.05}
        maxZoom={2}
        nodesDraggable={false}
        nodesConnectable={false}
        elementsSelectable
        onlyRenderVisibleElements={definition.nodes.length > 200}
        onNodeClick={(_, node) => onSelect(node.id)}
        onPaneClick={() => onSelect(null)}
        colorMode={colorMode}
        proOptions={{ hideAttribution: true }}
      >
        <Background />
        <Controls showInteractive={false} />
        {definition.nodes.length > 30 && <MiniMap pannable zoomable />}
      </ReactFlow>
    </div>
  );
}
