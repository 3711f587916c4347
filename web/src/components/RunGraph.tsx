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
  type NodeChange,
  type NodeMouseHandler,
  type NodeProps,
} from "@xyflow/react";
import "@xyflow/react/dist/style.css";
import { memo, useCallback, useEffect, useMemo, useRef, useState } from "react";
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
  // Node and edge objects are kept while their step's look is unchanged, so that one
  // event re-renders one node and the edges into it, not the whole graph.
  // (Caches, not state: filling them again from scratch gives the same nodes and edges.)
  const [kept] = useState(() => new Map<string, StepNodeType>());
  const [keptEdges] = useState(() => new Map<string, Edge>());
  // Each node's measured size, from React Flow's dimension changes: a node object made
  // anew for a new status carries it, so that React Flow neither hides the node until it
  // has measured it again nor measures it (a forced layout) on every event.
  const [sizes] = useState(() => new Map<string, { width: number; height: number }>());
  const onNodesChange = useCallback(
    (changes: NodeChange<StepNodeType>[]) => {
      for (const change of changes) {
        if (change.type === "dimensions" && change.dimensions) sizes.set(change.id, change.dimensions);
      }
    },
    [sizes],
  );
  // Stable handlers: a new function on each render would re-render every node of the
  // graph (React Flow hands them to each node's wrapper) on every event of the run.
  const select = useRef(onSelect);
  useEffect(() => {
    select.current = onSelect;
  }, [onSelect]);
  const onNodeClick = useCallback<NodeMouseHandler<StepNodeType>>((_, node) => select.current(node.id), []);
  const onPaneClick = useCallback(() => select.current(null), []);
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
      const size = sizes.get(n.id);
      const made: StepNodeType = {
        id: n.id,
        type: "step",
        position,
        ...(size ? { measured: size } : {}),
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
  }, [definition, positions, steps, selected, kept, sizes]);
  const edges = useMemo<Edge[]>(
    () =>
      definition.edges.map((e, i) => {
        const targetStatus = steps[e.target]?.status;
        const id = `e${i}-${e.source}-${e.target}`;
        const sourceHandle = e.sourceHandle ?? null;
        const animated = targetStatus === "RUNNING";
        const className = targetStatus ? `edge-${targetStatus.toLowerCase()}` : undefined;
        const old = keptEdges.get(id);
        if (old && old.sourceHandle === sourceHandle && old.animated === animated && old.className === className) return old;
        const made: Edge = {
          id,
          source: e.source,
          target: e.target,
          sourceHandle,
          label: e.sourceHandle ?? undefined,
          animated,
          className,
        };
        keptEdges.set(id, made);
        return made;
      }),
    [definition, steps, keptEdges],
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
        onNodesChange={onNodesChange}
        onNodeClick={onNodeClick}
        onPaneClick={onPaneClick}
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
