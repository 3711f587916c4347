// The visual workflow editor: a canvas of the definition (the same format the engine
// reads), a palette from the server's node types, a properties form generated from each
// type's JSON Schema, live validation by the server, undo/redo, copy/paste, layout,
// import/export, save as a new version, and a test run coloured on the canvas.
import {
  Background,
  Controls,
  MiniMap,
  ReactFlow,
  ReactFlowProvider,
  useEdgesState,
  useNodesState,
  useReactFlow,
  type Connection,
  type Edge,
  type OnNodesChange,
  type OnEdgesChange,
  type OnDelete,
} from "@xyflow/react";
import "@xyflow/react/dist/style.css";
import { useQuery } from "@tanstack/react-query";
import { useCallback, useEffect, useMemo, useRef, useState, type DragEvent } from "react";
import { Link, useBlocker, useNavigate } from "react-router";
import { ErrorBox, Loading, UserErrorBox } from "../../components/States";
import { Time } from "../../components/Time";
import {
  CreateDraftDocument,
  EditorWorkflowDocument,
  NodeTypesDocument,
  SaveDraftDocument,
  StartRunDocument,
  ValidateDraftDocument,
} from "../../gql/graphql";
import { request } from "../../lib/api";
import { readDefinition, type Definition } from "../../lib/definition";
import { layout as dagreLayout } from "../../lib/layout";
import { asUserError, type UserErrorLike } from "../../lib/userError";
import { describeDiff, diffDefinitions } from "../workflows/diff";
import { edgeKey, shortValue, union, type EdgeMark, type NodeMark } from "./compare";
import type { Upstream } from "./complete";
import { CanvasContext, EditorNodeView, type EditorFlowNode } from "./EditorNodeView";
import { push, redo, start, undo, type History } from "./history";
import { connectionProblem, duplicate, edgeId, fromDefinition, isValidNodeId, newNodeId, toDefinition, type Draft, type EditorNode, type NodeRules } from "./model";
import { Properties } from "./Properties";
import { Shortcuts } from "./Shortcuts";
import { TestRun } from "./TestRun";

const nodeTypes = { editor: EditorNodeView };
/** How the canvas fits its graph: on opening, on F, after a layout or an import. */
const FIT = { padding: 0.2, maxZoom: 1 };
const ARROWS: Record<string, { x: number; y: number } | undefined> = {
  ArrowUp: { x: 0, y: -1 },
  ArrowDown: { x: 0, y: 1 },
  ArrowLeft: { x: -1, y: 0 },
  ArrowRight: { x: 1, y: 0 },
};
const EMPTY: Definition = {
  nodes: [
    { id: "start", type: "start", position: { x: 0, y: 0 } },
    { id: "end", type: "end", position: { x: 0, y: 200 } },
  ],
  edges: [{ source: "start", target: "end" }],
};

interface Problem {
  path: string;
  message: string;
  nodeId?: string | null;
  edge?: number | null;
}

function toFlow(draft: Draft, measured: Map<string, EditorFlowNode["measured"]>): { nodes: EditorFlowNode[]; edges: Edge[] } {
  return {
    nodes: draft.nodes.map((n) => ({
      id: n.id,
      type: "editor",
      position: n.position,
      data: { nodeType: n.type, label: n.label ?? n.id, raw: n.data } as EditorFlowNode["data"],
      measured: measured.get(n.id),
    })),
    edges: draft.edges.map((e) => ({ id: e.id, source: e.source, target: e.target, sourceHandle: e.sourceHandle, label: e.sourceHandle ?? undefined })),
  };
}

/** The draft the canvas shows; what a comparison draws besides (removed nodes and edges)
 * is not part of it. */
function fromFlow(allNodes: EditorFlowNode[], allEdges: Edge[], previous: Draft): Draft {
  const old = new Map(previous.nodes.map((n) => [n.id, n]));
  const nodes = allNodes.filter((n) => !n.data.ghost);
  const edges = allEdges.filter((e) => !(e.data as { ghost?: boolean } | undefined)?.ghost);
  return {
    nodes: nodes.map((n) => {
      const before = old.get(n.id);
      const raw = (n.data as { raw?: Record<string, unknown> }).raw;
      const out: EditorNode = { id: n.id, type: n.data.nodeType, position: n.position, data: raw ?? before?.data ?? {} };
      const label = before?.label;
      if (label) out.label = label;
      return out;
    }),
    edges: edges.map((e) => ({ id: e.id, source: e.source, target: e.target, sourceHandle: e.sourceHandle ?? null })),
  };
}

interface Initial {
  name: string;
  description: string;
  version: number | null;
  draft: Draft;
}

export function EditorPage({ workflowId }: { workflowId: string | null }) {
  const types = useQuery({ queryKey: ["node-types"], queryFn: ({ signal }) => request(NodeTypesDocument, {}, signal), staleTime: Infinity });
  const loaded = useQuery({
    queryKey: ["editor", workflowId],
    queryFn: ({ signal }) => request(EditorWorkflowDocument, { id: workflowId! }, signal),
    enabled: workflowId !== null,
  });
  const rules = useMemo<Record<string, NodeRules>>(
    () => Object.fromEntries((types.data?.nodeTypes ?? []).map((t) => [t.type, { ...t, description: t.description ?? "", maxOutgoing: t.maxOutgoing ?? null }])),
    [types.data],
  );
  if (types.isPending || (workflowId !== null && loaded.isPending)) return <Loading what="the editor" />;
  if (types.error) return <ErrorBox error={types.error} />;
  if (loaded.error) return <ErrorBox error={loaded.error} />;
  const wf = loaded.data?.workflow;
  if (workflowId !== null && !wf) return <ErrorBox error={`No workflow ${workflowId}: it does not exist or is not yours.`} />;
  // The editor takes this as its starting point once (state initialisers); later reads
  // (versions after a save) do not reset the draft.
  let initial: Initial;
  if (wf) {
    const def = readDefinition(wf.definition);
    initial = { name: wf.name, description: wf.description ?? "", version: wf.version, draft: fromDefinition(def, dagreLayout(def)) };
  } else {
    initial = { name: "untitled-workflow", description: "", version: null, draft: fromDefinition(EMPTY, {}) };
  }
  return (
    <ReactFlowProvider>
      <Editor
        workflowId={workflowId}
        rules={rules}
        nodeTypeList={types.data.nodeTypes}
        initial={initial}
        versions={loaded.data?.workflowVersions?.edges.map((e) => e.node) ?? []}
        refetch={async () => (await loaded.refetch()).data?.workflow?.version ?? null}
      />
    </ReactFlowProvider>
  );
}

interface VersionRow {
  id: string;
  version: number;
  definition: unknown;
  createdAt: string;
  message: string | null;
  author: string | null;
}

function Editor({
  workflowId,
  rules,
  nodeTypeList,
  initial,
  versions,
  refetch,
}: {
  workflowId: string | null;
  rules: Record<string, NodeRules>;
  nodeTypeList: { type: string; label: string; description: string | null }[];
  initial: Initial;
  versions: VersionRow[];
  refetch: () => Promise<number | null>;
}) {
  const navigate = useNavigate();
  const flow = useReactFlow<EditorFlowNode, Edge>();
  const [name, setName] = useState(initial.name);
  const [description, setDescription] = useState(initial.description);
  const [baseVersion, setBaseVersion] = useState<number | null>(initial.version);
  const [history, setHistory] = useState<History<Draft>>(() => start(initial.draft));
  const [saved, setSaved] = useState<string>(() => JSON.stringify(toDefinition(initial.draft)));
  const measured = useRef(new Map<string, EditorFlowNode["measured"]>());
  const [first] = useState(() => toFlow(initial.draft, new Map()));
  const [nodes, setNodes, onNodesChangeBase] = useNodesState<EditorFlowNode>(first.nodes);
  const [edges, setEdges, onEdgesChangeBase] = useEdgesState<Edge>(first.edges);
  const [message, setMessage] = useState<string | null>(null);
  const [saveError, setSaveError] = useState<UserErrorLike | Error | null>(null);
  const [versionMessage, setVersionMessage] = useState("");
  const [validated, setValidated] = useState<{ json: string; problems: Problem[] }>({ json: "", problems: [] });
  const [compareWith, setCompareWith] = useState<string>("");
  const [compareTo, setCompareTo] = useState<string>("");
  // What a comparison draws besides the draft is not in the nodes state: its measured
  // sizes are kept here (React Flow keeps re-measuring a node given without them).
  const [ghostSize, setGhostSize] = useState<Record<string, { width: number; height: number }>>({});
  const [conflictWith, setConflictWith] = useState<number | null>(null);
  const [testRun, setTestRun] = useState<string | null>(null);
  const [statuses, setStatuses] = useState<Record<string, string>>({});
  const clipboard = useRef<Draft | null>(null);
  // Set when a save moves to the saved workflow's address: that is no leaving.
  const justSaved = useRef(false);
  const draft = history.present;
  const compared = versions.find((v) => String(v.version) === compareWith);
  const comparedTo = compareTo ? versions.find((v) => String(v.version) === compareTo) : undefined;
  // Two saved versions side by side: the canvas shows them, not the draft, so nothing edits.
  const readOnly = compared !== undefined && comparedTo !== undefined;

  const show = useCallback(
    (d: Draft) => {
      const f = toFlow(d, measured.current);
      const selected = new Set(flow.getNodes().filter((n) => n.selected).map((n) => n.id));
      setNodes(f.nodes.map((n) => ({ ...n, selected: selected.has(n.id) })));
      setEdges(f.edges);
    },
    [flow, setNodes, setEdges],
  );

  /** A change worth an undo step: record it and show it. */
  const commit = useCallback(
    (next: Draft) => {
      setHistory((h) => push(h, next));
      show(next);
    },
    [show],
  );

  const current = useCallback(
    (): Draft => (readOnly ? history.present : fromFlow(flow.getNodes(), flow.getEdges(), history.present)),
    [flow, history.present, readOnly],
  );

  /** Moved nodes (by mouse or keys) as one undo step; nothing when nothing moved. */
  const commitMoves = useCallback(() => {
    const d = current();
    if (JSON.stringify(toDefinition(d)) !== JSON.stringify(toDefinition(history.present))) commit(d);
  }, [current, history.present, commit]);

  const onNodesChange: OnNodesChange<EditorFlowNode> = useCallback(
    (changes) => {
      const ghostSizes: Record<string, { width: number; height: number }> = {};
      for (const c of changes) {
        if (c.type !== "dimensions" || !c.dimensions) continue;
        measured.current.set(c.id, c.dimensions);
        if (flow.getNode(c.id)?.data.ghost) ghostSizes[c.id] = c.dimensions;
      }
      if (Object.keys(ghostSizes).length) setGhostSize((s) => ({ ...s, ...ghostSizes }));
      onNodesChangeBase(changes);
    },
    [onNodesChangeBase, flow],
  );
  const onEdgesChange: OnEdgesChange<Edge> = onEdgesChangeBase;
  // One deletion (the selected nodes, their edges and the selected edges) is one undo
  // step: React Flow reports it once here, besides a node change and an edge change.
  const onDelete: OnDelete<EditorFlowNode, Edge> = useCallback(
    ({ nodes: goneNodes, edges: goneEdges }) => {
      const nodeIds = new Set(goneNodes.map((n) => n.id));
      const edgeIds = new Set(goneEdges.map((e) => e.id));
      const d = current();
      commit({
        nodes: d.nodes.filter((n) => !nodeIds.has(n.id)),
        edges: d.edges.filter((e) => !edgeIds.has(e.id) && !nodeIds.has(e.source) && !nodeIds.has(e.target)),
      });
    },
    [current, commit],
  );

  const onConnect = useCallback(
    (c: Connection) => {
      const d = current();
      const wanted = { source: c.source, target: c.target, sourceHandle: c.sourceHandle ?? null };
      const problem = connectionProblem(d, rules, wanted);
      if (problem) {
        setMessage(problem);
        return;
      }
      setMessage(null);
      commit({ ...d, edges: [...d.edges, { ...wanted, id: edgeId(wanted) }] });
    },
    [current, rules, commit],
  );

  const addNode = useCallback(
    (type: string, position?: { x: number; y: number }) => {
      const d = current();
      const id = newNodeId(type, d.nodes.map((n) => n.id));
      const at = position ?? flow.screenToFlowPosition({ x: window.innerWidth / 2, y: window.innerHeight / 2 });
      const node: EditorNode = { id, type, position: at, data: {} };
      commit({ ...d, nodes: [...d.nodes, node] });
      setNodes((ns) => ns.map((n) => ({ ...n, selected: n.id === id })));
    },
    [current, flow, commit, setNodes],
  );

  const onDrop = useCallback(
    (event: DragEvent) => {
      event.preventDefault();
      const type = event.dataTransfer.getData("application/x-flowsync-node-type");
      if (!type) return;
      addNode(type, flow.screenToFlowPosition({ x: event.clientX, y: event.clientY }));
    },
    [addNode, flow],
  );

  const selectedNodes = nodes.filter((n) => n.selected);
  const selected = selectedNodes.length === 1 ? draft.nodes.find((n) => n.id === selectedNodes[0]!.id) : undefined;

  const doUndo = useCallback(() => {
    setHistory((h) => {
      const next = undo(h);
      show(next.present);
      return next;
    });
  }, [show]);
  const doRedo = useCallback(() => {
    setHistory((h) => {
      const next = redo(h);
      show(next.present);
      return next;
    });
  }, [show]);
  const copy = useCallback(() => {
    const ids = flow.getNodes().filter((n) => n.selected).map((n) => n.id);
    if (ids.length) clipboard.current = duplicate(current(), ids, 0);
  }, [flow, current]);
  const paste = useCallback(() => {
    const clip = clipboard.current;
    if (!clip) return;
    const d = current();
    const ids = clip.nodes.map((n) => n.id);
    const copies = duplicate({ nodes: [...d.nodes, ...clip.nodes], edges: [...d.edges, ...clip.edges] }, ids, 40);
    commit({ nodes: [...d.nodes, ...copies.nodes], edges: [...d.edges, ...copies.edges] });
    const fresh = new Set(copies.nodes.map((n) => n.id));
    setNodes((ns) => ns.map((n) => ({ ...n, selected: fresh.has(n.id) })));
  }, [current, commit, setNodes]);
  const tidy = useCallback(async () => {
    const { elkLayout } = await import("./elk");
    const d = current();
    const positions = await elkLayout(toDefinition(d));
    commit({ ...d, nodes: d.nodes.map((n) => ({ ...n, position: positions[n.id] ?? n.position })) });
    window.requestAnimationFrame(() => void flow.fitView(FIT));
  }, [current, commit, flow]);

  // Live validation: 250 ms after the last change, the draft goes to the server.
  const definition = useMemo(() => toDefinition(draft), [draft]);
  const definitionJson = useMemo(() => JSON.stringify(definition), [definition]);
  const dirty = definitionJson !== saved;
  useEffect(() => {
    const timer = window.setTimeout(() => {
      request(ValidateDraftDocument, { definition: JSON.parse(definitionJson) as unknown })
        .then((r) => setValidated({ json: definitionJson, problems: r.validateWorkflow.problems }))
        .catch((e: Error) => setValidated({ json: definitionJson, problems: [{ path: "$", message: `Could not validate: ${e.message}` }] }));
    }, 250);
    return () => window.clearTimeout(timer);
  }, [definitionJson]);
  const checking = validated.json !== definitionJson;
  const problems = validated.problems;

  const byNode = useMemo(() => {
    const out: Record<string, string[]> = {};
    for (const p of problems) {
      if (p.nodeId) (out[p.nodeId] ??= []).push(p.message);
      if (p.edge !== null && p.edge !== undefined) {
        const e = draft.edges[p.edge];
        if (e) (out[`edge:${e.id}`] ??= []).push(p.message);
      }
    }
    return out;
  }, [problems, draft.edges]);

  // Comparing: version `compareWith` against the draft (drawn over it, still editable) or
  // against another version (drawn instead of it, read-only). Either way the canvas holds
  // both sides: removed nodes and edges drawn as they were, every element marked.
  const comparison = useMemo(() => {
    if (!compared) return null;
    const before = readDefinition(compared.definition);
    const after = comparedTo ? readDefinition(comparedTo.definition) : definition;
    const u = union(before, after);
    const nodeMarks: Record<string, NodeMark> = Object.fromEntries(u.nodes.map((n) => [n.node.id, n.mark]));
    const edgeMarks: Record<string, EdgeMark> = Object.fromEntries(u.edges.map((e) => [edgeKey(e.edge), e.mark]));
    return { union: u, nodeMarks, edgeMarks, summary: describeDiff(diffDefinitions(before, after)), before, after, readOnly: comparedTo !== undefined };
  }, [compared, comparedTo, definition]);

  const [shownNodes, shownEdges] = useMemo((): [EditorFlowNode[], Edge[]] => {
    const invalid = (e: Edge): Edge => (byNode[`edge:${e.id}`] ? { ...e, className: "edge-invalid", animated: false } : e);
    if (!comparison) return [nodes, edges.map(invalid)];
    const { union: u, nodeMarks, edgeMarks } = comparison;
    const fixed = { selectable: false, draggable: false, deletable: false, connectable: false, focusable: false };
    // Definitions saved without positions are laid out as the workflow page does.
    const beforeAt = dagreLayout(comparison.before);
    const afterAt = comparison.readOnly ? dagreLayout(comparison.after) : {};
    const drawn = (n: (typeof u.nodes)[number], at: Record<string, { x: number; y: number }>): EditorFlowNode => ({
      id: n.node.id,
      type: "editor",
      position: n.node.position ?? at[n.node.id] ?? { x: 0, y: 0 },
      data: { nodeType: n.node.type, label: n.node.label ?? n.node.id, ghost: true },
      domAttributes: { "data-diff": n.mark } as EditorFlowNode["domAttributes"],
      measured: ghostSize[n.node.id],
      // Until measured: React Flow keeps a node with no size at all hidden.
      initialWidth: 180,
      initialHeight: 56,
      ...fixed,
    });
    const drawnEdge = (e: (typeof u.edges)[number]): Edge => ({
      id: e.mark === "removed" ? `removed:${edgeKey(e.edge)}` : edgeKey(e.edge),
      source: e.edge.source,
      target: e.edge.target,
      sourceHandle: e.edge.sourceHandle ?? null,
      label: e.edge.sourceHandle ?? undefined,
      className: `diff-${e.mark}`,
      data: { ghost: true },
      domAttributes: { "data-diff": e.mark } as Edge["domAttributes"],
      ...fixed,
    });
    // A removed node drawn where a node of the newer side now stands would hide under it
    // (or hide it): it moves right until it is clear.
    const clear = (placed: EditorFlowNode[], ghosts: EditorFlowNode[]): EditorFlowNode[] => {
      const taken = [...placed];
      return ghosts.map((g) => {
        let { x } = g.position;
        const y = g.position.y;
        const overlaps = (o: EditorFlowNode) =>
          Math.abs(o.position.x - x) < (o.measured?.width ?? 180) + 20 && Math.abs(o.position.y - y) < (o.measured?.height ?? 56) + 10;
        for (let i = 0; i < 50 && taken.some(overlaps); i += 1) x += 220;
        const moved = { ...g, position: { x, y } };
        taken.push(moved);
        return moved;
      });
    };
    const removedNodes = u.nodes.filter((n) => n.mark === "removed");
    if (comparison.readOnly) {
      const kept = u.nodes.filter((n) => n.mark !== "removed").map((n) => drawn(n, afterAt));
      return [[...kept, ...clear(kept, removedNodes.map((n) => drawn(n, beforeAt)))], u.edges.map(drawnEdge)];
    }
    const marked = (mark: string | undefined) => ({ "data-diff": mark ?? "same" });
    return [
      [
        ...nodes.map((n) => ({ ...n, domAttributes: marked(nodeMarks[n.id]) as EditorFlowNode["domAttributes"] })),
        ...clear(nodes, removedNodes.map((n) => drawn(n, beforeAt))),
      ],
      [
        ...edges.map((e) => {
          const mark = edgeMarks[e.id] ?? "same";
          const shown = invalid(e);
          return { ...shown, className: [shown.className, `diff-${mark}`].filter(Boolean).join(" "), domAttributes: marked(mark) as Edge["domAttributes"] };
        }),
        ...u.edges.filter((e) => e.mark === "removed").map(drawnEdge),
      ],
    ];
  }, [comparison, nodes, edges, byNode, ghostSize]);
  // Entering or leaving a read-only comparison changes what is drawn: fit it.
  const wasReadOnly = useRef(readOnly);
  useEffect(() => {
    if (wasReadOnly.current === readOnly) return;
    wasReadOnly.current = readOnly;
    window.requestAnimationFrame(() => void flow.fitView(FIT));
  }, [readOnly, flow]);

  const save = useCallback(async () => {
    setSaveError(null);
    if (problems.length > 0) {
      setSaveError(new Error(`Fix the ${problems.length} problem${problems.length === 1 ? "" : "s"} first: nothing invalid is saved.`));
      return;
    }
    try {
      if (workflowId === null) {
        const r = await request(CreateDraftDocument, { input: { name, description: description || null, definition } });
        const err = asUserError(r.createWorkflow);
        if (err) return setSaveError(err);
        if (r.createWorkflow.__typename === "WorkflowPayload") {
          setSaved(definitionJson);
          justSaved.current = true;
          void navigate(`/workflows/${r.createWorkflow.workflow.id}/edit`, { replace: true, state: { saved: true } });
        }
        return;
      }
      const input: Record<string, unknown> = { name, description: description || null, definition, expectedVersion: baseVersion };
      if (versionMessage.trim()) input.versionMessage = versionMessage.trim();
      const r = await request(SaveDraftDocument, { id: workflowId, input });
      const err = asUserError(r.updateWorkflow);
      if (err) {
        setSaveError(err);
        if (r.updateWorkflow.__typename === "ConflictError" && r.updateWorkflow.currentVersion) {
          setConflictWith(r.updateWorkflow.currentVersion);
        }
        return;
      }
      if (r.updateWorkflow.__typename === "WorkflowPayload") {
        setBaseVersion(r.updateWorkflow.workflow.version);
        setSaved(definitionJson);
        setVersionMessage("");
        setMessage(`Saved as version ${r.updateWorkflow.workflow.version}.`);
        void refetch();
      }
    } catch (e) {
      setSaveError(e as Error);
    }
  }, [problems, workflowId, name, description, definition, definitionJson, baseVersion, versionMessage, navigate, refetch]);

  // Leaving with unsaved changes asks first (in the app and when closing the tab).
  const blocker = useBlocker(
    ({ currentLocation, nextLocation }) => dirty && !justSaved.current && currentLocation.pathname !== nextLocation.pathname,
  );
  useEffect(() => {
    if (!dirty) return;
    const warn = (e: BeforeUnloadEvent) => e.preventDefault();
    window.addEventListener("beforeunload", warn);
    return () => window.removeEventListener("beforeunload", warn);
  }, [dirty]);

  // Keyboard shortcuts (listed in Shortcuts.tsx; tests/browser/test_editor.py tries each).
  // Arrow keys move the selected nodes: React Flow does it when a node has the focus, this
  // handler when the focus is elsewhere (e.g. after picking a problem); releasing the key
  // records the whole move as one undo step.
  const arrowMoved = useRef(false);
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      const target = e.target as HTMLElement;
      const mod = e.ctrlKey || e.metaKey;
      const key = e.key.toLowerCase();
      if (mod && key === "s" && !e.altKey) {
        // Saving works from a field too: what was typed is already in the draft.
        e.preventDefault();
        if (!readOnly) void save();
        return;
      }
      if (target.closest("input, textarea, select, [contenteditable=true]")) return;
      if (readOnly) {
        // A comparison of two versions is for looking, not for editing.
        if (!mod && key === "f") void flow.fitView(FIT);
        return;
      }
      const arrow = ARROWS[e.key];
      if (arrow && !mod && !e.altKey) {
        if (!flow.getNodes().some((n) => n.selected)) return;
        arrowMoved.current = true;
        if (e.defaultPrevented) return; // React Flow moved them
        const step = e.shiftKey ? 20 : 5;
        setNodes((ns) => ns.map((n) => (n.selected ? { ...n, position: { x: n.position.x + arrow.x * step, y: n.position.y + arrow.y * step } } : n)));
        e.preventDefault();
        return;
      }
      if (mod && key === "z" && !e.shiftKey) doUndo();
      else if (mod && (key === "y" || (key === "z" && e.shiftKey))) doRedo();
      else if (mod && key === "c") copy();
      else if (mod && key === "v") paste();
      else if (mod && key === "d") {
        copy();
        paste();
      } else if (mod && key === "a") setNodes((ns) => ns.map((n) => ({ ...n, selected: true })));
      else if (!mod && key === "f") void flow.fitView(FIT);
      else if (!mod && key === "l") void tidy();
      else return;
      e.preventDefault();
    };
    const onKeyUp = (e: KeyboardEvent) => {
      if (!ARROWS[e.key] || !arrowMoved.current) return;
      arrowMoved.current = false;
      commitMoves();
    };
    window.addEventListener("keydown", onKey);
    window.addEventListener("keyup", onKeyUp);
    return () => {
      window.removeEventListener("keydown", onKey);
      window.removeEventListener("keyup", onKeyUp);
    };
  }, [doUndo, doRedo, copy, paste, save, tidy, flow, setNodes, readOnly, commitMoves]);

  const exportJson = () => {
    const doc = { name, description: description || undefined, definition };
    const blob = new Blob([JSON.stringify(doc, null, 2)], { type: "application/json" });
    const a = document.createElement("a");
    a.href = URL.createObjectURL(blob);
    a.download = `${name || "workflow"}.json`;
    a.click();
    URL.revokeObjectURL(a.href);
  };
  const importJson = async (file: File) => {
    try {
      const raw = JSON.parse(await file.text()) as Record<string, unknown>;
      const defRaw = "definition" in raw ? raw.definition : raw;
      const def = readDefinition(defRaw);
      if (def.nodes.length === 0) throw new Error("no nodes in it");
      if (typeof raw.name === "string") setName(raw.name);
      if (typeof raw.description === "string") setDescription(raw.description);
      commit(fromDefinition(def, dagreLayout(def)));
      window.requestAnimationFrame(() => void flow.fitView(FIT));
      setMessage(`Imported ${file.name}.`);
    } catch (e) {
      setMessage(`Cannot import ${file.name}: ${(e as Error).message}`);
    }
  };

  const upstream = useMemo(() => {
    if (!selected) return [];
    const incoming = new Map<string, string[]>();
    for (const e of draft.edges) incoming.set(e.target, [...(incoming.get(e.target) ?? []), e.source]);
    const seen = new Set<string>();
    const stack = [...(incoming.get(selected.id) ?? [])];
    while (stack.length) {
      const id = stack.pop()!;
      if (seen.has(id)) continue;
      seen.add(id);
      stack.push(...(incoming.get(id) ?? []));
    }
    const out: Upstream[] = [];
    for (const n of draft.nodes) if (seen.has(n.id) && n.type !== "start") out.push({ id: n.id, type: n.type, ...(n.label ? { label: n.label } : {}) });
    return out;
  }, [selected, draft]);

  const canvas = { rules, problems: byNode, statuses, diff: comparison?.nodeMarks ?? {} };
  return (
    <div className="editor">
      <div className="page-head editor-head">
        <div className="editor-title">
          <p className="crumbs">
            <Link to="/workflows">Workflows</Link>
            {workflowId && (
              <>
                {" / "}
                <Link to={`/workflows/${workflowId}`}>{name}</Link>
              </>
            )}
          </p>
          <label className="sr-only" htmlFor="wf-name">
            Workflow name
          </label>
          <input id="wf-name" className="title-input" value={name} onChange={(e) => setName(e.target.value)} />
          <label className="sr-only" htmlFor="wf-description">
            Description
          </label>
          <input id="wf-description" placeholder="Description" value={description} onChange={(e) => setDescription(e.target.value)} />
          <span className="muted small" data-testid="editor-state">
            {baseVersion ? `version ${baseVersion}` : "not saved yet"} · {dirty ? "unsaved changes" : "saved"} ·{" "}
            {checking ? "checking…" : problems.length ? `${problems.length} problem${problems.length === 1 ? "" : "s"}` : "valid"}
          </span>
        </div>
        <div className="actions">
          <button type="button" onClick={doUndo} disabled={readOnly || history.past.length === 0} aria-keyshortcuts="Control+Z">
            Undo
          </button>
          <button type="button" onClick={doRedo} disabled={readOnly || history.future.length === 0} aria-keyshortcuts="Control+Shift+Z">
            Redo
          </button>
          <button type="button" onClick={() => void tidy()} aria-keyshortcuts="L" disabled={readOnly}>
            Tidy up
          </button>
          <button type="button" onClick={exportJson}>
            Export
          </button>
          <label className="button-like">
            Import
            <input type="file" accept="application/json,.json" className="sr-only" disabled={readOnly} onChange={(e) => e.target.files?.[0] && void importJson(e.target.files[0])} />
          </label>
          {workflowId && (
            <input aria-label="Version message" placeholder="Version message" value={versionMessage} onChange={(e) => setVersionMessage(e.target.value)} />
          )}
          <button type="button" className="primary" onClick={() => void save()} aria-keyshortcuts="Control+S" disabled={readOnly || (!dirty && workflowId !== null)}>
            {workflowId ? "Save version" : "Create workflow"}
          </button>
        </div>
      </div>
      {message && (
        <div className="notice" role="status" data-testid="editor-message">
          {message}
        </div>
      )}
      {saveError && (saveError instanceof Error ? <ErrorBox error={saveError} /> : <UserErrorBox error={saveError} />)}
      {saveError && !(saveError instanceof Error) && saveError.__typename === "ConflictError" && (
        <p>
          Someone saved another version meanwhile. Compare it with your draft below (choose it under <em>Compare with</em>), then
          save again to make yours the newest:{" "}
          <button
            type="button"
            onClick={() => {
              void refetch().then((newest) => {
                const version = conflictWith ?? newest;
                if (version) {
                  setCompareWith(String(version));
                  setCompareTo("");
                  setBaseVersion(version);
                  setSaveError(null);
                }
              });
            }}
          >
            Compare with the newest version
          </button>
        </p>
      )}
      <div className="editor-body">
        <nav className="palette" aria-label="Node types">
          <h2>Nodes</h2>
          <p className="muted small">Drag onto the canvas, or press Enter to add.</p>
          {nodeTypeList.map((t) => (
            <button
              key={t.type}
              type="button"
              className="palette-item"
              data-node-type={t.type}
              disabled={readOnly}
              draggable={!readOnly}
              title={t.description ?? undefined}
              onDragStart={(e) => {
                e.dataTransfer.setData("application/x-flowsync-node-type", t.type);
                e.dataTransfer.effectAllowed = "move";
              }}
              onClick={() => addNode(t.type)}
            >
              {t.label}
            </button>
          ))}
          <Shortcuts />
        </nav>
        <div className="editor-canvas" onDragOver={(e) => e.preventDefault()} onDrop={onDrop} data-testid="editor-canvas">
          <CanvasContext.Provider value={canvas}>
            <ReactFlow
              nodes={shownNodes}
              edges={shownEdges}
              nodeTypes={nodeTypes}
              onNodesChange={onNodesChange}
              onEdgesChange={onEdgesChange}
              onDelete={onDelete}
              onConnect={onConnect}
              onNodeDragStop={commitMoves}
              nodesDraggable={!readOnly}
              nodesConnectable={!readOnly}
              elementsSelectable={!readOnly}
              deleteKeyCode={readOnly ? null : ["Delete", "Backspace"]}
              multiSelectionKeyCode={["Shift", "Meta", "Control"]}
              selectionKeyCode="Shift"
              fitView
              fitViewOptions={FIT}
              minZoom={0.05}
              proOptions={{ hideAttribution: true }}
              colorMode={document.documentElement.dataset.theme === "dark" ? "dark" : "light"}
            >
              <Background />
              <Controls />
              <MiniMap pannable zoomable />
            </ReactFlow>
          </CanvasContext.Provider>
          {comparison && (
            <div className="diff-legend" data-testid="diff-legend" aria-label="What the marks mean">
              <strong>
                {readOnly ? `v${compareWith} → v${compareTo}, read-only` : `v${compareWith} → your draft`}
              </strong>
              <span className="diff-key" data-diff="added">
                added
              </span>
              <span className="diff-key" data-diff="changed">
                changed
              </span>
              <span className="diff-key" data-diff="removed">
                removed
              </span>
              <span className="diff-key diff-key-edge" data-diff="added">
                edge added
              </span>
              <span className="diff-key diff-key-edge" data-diff="removed">
                edge removed
              </span>
            </div>
          )}
        </div>
        <div className="editor-side">
          {selected ? (
            <Properties
              key={selected.id}
              node={selected}
              rules={rules[selected.type]}
              upstream={upstream}
              problems={problems.filter((p) => p.nodeId === selected.id)}
              otherIds={draft.nodes.filter((n) => n.id !== selected.id).map((n) => n.id)}
              onChange={(data, label) => {
                const d = current();
                commit({ ...d, nodes: d.nodes.map((n) => (n.id === selected.id ? { ...n, data, ...(label ? { label } : { label: undefined }) } : n)) });
              }}
              onRename={(id) => {
                const d = current();
                if (!isValidNodeId(id)) return "An id starts with a letter or _, then letters, digits, _ or - (at most 64).";
                if (d.nodes.some((n) => n.id === id)) return `There is already a node ${id}.`;
                const rename = (x: string) => (x === selected.id ? id : x);
                commit({
                  nodes: d.nodes.map((n) => (n.id === selected.id ? { ...n, id } : n)),
                  edges: d.edges.map((e) => {
                    const next = { source: rename(e.source), target: rename(e.target), sourceHandle: e.sourceHandle };
                    return { ...next, id: edgeId(next) };
                  }),
                });
                return null;
              }}
            />
          ) : (
            <aside className="panel editor-panel">
              <h2>Problems</h2>
              {problems.length === 0 ? (
                <p className="muted" data-testid="no-problems">
                  {checking ? "Checking…" : "None: this workflow can be saved."}
                </p>
              ) : (
                <ul className="problem-list" data-testid="problems">
                  {problems.map((p, i) => (
                    <li key={i}>
                      <button
                        type="button"
                        className="link"
                        onClick={() => {
                          if (p.nodeId) {
                            setNodes((ns) => ns.map((n) => ({ ...n, selected: n.id === p.nodeId })));
                            const n = flow.getNode(p.nodeId);
                            if (n) void flow.setCenter(n.position.x + 90, n.position.y + 28, { zoom: 1.2, duration: 200 });
                          } else if (p.edge !== null && p.edge !== undefined) {
                            const e = draft.edges[p.edge];
                            if (e) setEdges((es) => es.map((x) => ({ ...x, selected: x.id === e.id })));
                          }
                        }}
                      >
                        <code>{p.path}</code>
                      </button>{" "}
                      {p.nodeId ? <strong>{p.nodeId}</strong> : null} {p.message}
                    </li>
                  ))}
                </ul>
              )}
              {versions.length > 0 && (
                <section>
                  <h2>Versions</h2>
                  <ol className="version-list" reversed aria-label="Versions">
                    {versions.map((v) => (
                      <li key={v.id}>
                        <strong>v{v.version}</strong> <Time iso={v.createdAt} />
                        {v.author && <span className="muted"> by {v.author}</span>}
                        {v.message && <div className="small">{v.message}</div>}
                      </li>
                    ))}
                  </ol>
                  <div className="compare-pick">
                    <label>
                      Compare{" "}
                      <select aria-label="Compare with" value={compareWith} onChange={(e) => setCompareWith(e.target.value)}>
                        <option value="">–</option>
                        {versions.map((v) => (
                          <option key={v.id} value={v.version}>
                            version {v.version}
                          </option>
                        ))}
                      </select>
                    </label>{" "}
                    <label>
                      with{" "}
                      <select aria-label="Compare against" value={compareTo} onChange={(e) => setCompareTo(e.target.value)} disabled={!compareWith}>
                        <option value="">your draft</option>
                        {versions
                          .filter((v) => String(v.version) !== compareWith)
                          .map((v) => (
                            <option key={v.id} value={v.version}>
                              version {v.version}
                            </option>
                          ))}
                      </select>
                    </label>
                  </div>
                  {comparison && (
                    <div data-testid="compare">
                      <p data-testid="compare-summary">
                        {readOnly ? `Version ${compareTo}` : "Your draft"} against version {compareWith}: {comparison.summary}
                        {readOnly && ". The canvas shows both, read-only: choose your draft to edit again."}
                      </p>
                      {comparison.union.changes.length > 0 && (
                        <ul className="compare-changes" data-testid="compare-changes" aria-label="Data changes">
                          {comparison.union.changes.map((c) => (
                            <li key={`${c.nodeId} ${c.field}`}>
                              <strong>{c.nodeId}</strong> <code>{c.field}</code>: <code className="before">{shortValue(c.before)}</code> →{" "}
                              <code className="after">{shortValue(c.after)}</code>
                            </li>
                          ))}
                        </ul>
                      )}
                      <p>
                        <button
                          type="button"
                          onClick={() => {
                            const def = readDefinition(compared!.definition);
                            commit(fromDefinition(def, dagreLayout(def)));
                            setCompareTo("");
                            setMessage(`Version ${compared!.version} restored into the draft: save to make it the newest version.`);
                          }}
                        >
                          Restore version {compareWith}
                        </button>{" "}
                        <button
                          type="button"
                          onClick={() => {
                            setCompareWith("");
                            setCompareTo("");
                          }}
                        >
                          Stop comparing
                        </button>
                      </p>
                    </div>
                  )}
                </section>
              )}
              {workflowId && (
                <TestRun
                  workflowId={workflowId}
                  dirty={dirty}
                  runId={testRun}
                  onStart={async (input) => {
                    const r = await request(StartRunDocument, { workflowId, input });
                    const err = asUserError(r.startExecution);
                    if (err) throw new Error(err.message ?? err.__typename);
                    if (r.startExecution.__typename === "StartExecutionPayload") setTestRun(r.startExecution.execution.id);
                  }}
                  onStatuses={setStatuses}
                />
              )}
            </aside>
          )}
        </div>
      </div>
      {blocker.state === "blocked" && (
        <div className="modal" role="dialog" aria-modal="true" aria-labelledby="leave-title">
          <div className="card">
            <h2 id="leave-title">Leave with unsaved changes?</h2>
            <p>Your changes to this workflow are not saved.</p>
            <button type="button" className="danger" onClick={() => blocker.proceed()}>
              Leave
            </button>{" "}
            <button type="button" className="primary" onClick={() => blocker.reset()} autoFocus>
              Stay
            </button>
          </div>
        </div>
      )}
    </div>
  );
}
