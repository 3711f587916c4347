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
import { CanvasContext, EditorNodeView, type EditorFlowNode } from "./EditorNodeView";
import { push, redo, start, undo, type History } from "./history";
import { connectionProblem, duplicate, edgeId, fromDefinition, isValidNodeId, newNodeId, toDefinition, type Draft, type EditorNode, type NodeRules } from "./model";
import { Properties } from "./Properties";
import { TestRun } from "./TestRun";

const nodeTypes = { editor: EditorNodeView };
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

function fromFlow(nodes: EditorFlowNode[], edges: Edge[], previous: Draft): Draft {
  const old = new Map(previous.nodes.map((n) => [n.id, n]));
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
  const [conflictWith, setConflictWith] = useState<number | null>(null);
  const [testRun, setTestRun] = useState<string | null>(null);
  const [statuses, setStatuses] = useState<Record<string, string>>({});
  const clipboard = useRef<Draft | null>(null);
  // Set when a save moves to the saved workflow's address: that is no leaving.
  const justSaved = useRef(false);
  const draft = history.present;

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

  const current = useCallback((): Draft => fromFlow(flow.getNodes(), flow.getEdges(), history.present), [flow, history.present]);

  const onNodesChange: OnNodesChange<EditorFlowNode> = useCallback(
    (changes) => {
      for (const c of changes) if (c.type === "dimensions" && c.dimensions) measured.current.set(c.id, c.dimensions);
      onNodesChangeBase(changes);
      if (changes.some((c) => c.type === "remove")) {
        const removed = new Set(changes.filter((c) => c.type === "remove").map((c) => c.id));
        const d = current();
        commit({
          nodes: d.nodes.filter((n) => !removed.has(n.id)),
          edges: d.edges.filter((e) => !removed.has(e.source) && !removed.has(e.target)),
        });
      }
    },
    [onNodesChangeBase, current, commit],
  );
  const onEdgesChange: OnEdgesChange<Edge> = useCallback(
    (changes) => {
      onEdgesChangeBase(changes);
      if (changes.some((c) => c.type === "remove")) {
        const removed = new Set(changes.filter((c) => c.type === "remove").map((c) => c.id));
        const d = current();
        commit({ ...d, edges: d.edges.filter((e) => !removed.has(e.id)) });
      }
    },
    [onEdgesChangeBase, current, commit],
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
    window.requestAnimationFrame(() => void flow.fitView({ padding: 0.2 }));
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
  const shownEdges = useMemo(
    () => edges.map((e) => (byNode[`edge:${e.id}`] ? { ...e, className: "edge-invalid", animated: false } : e)),
    [edges, byNode],
  );

  const compared = versions.find((v) => String(v.version) === compareWith);
  let diff: { summary: string; marks: Record<string, "added" | "changed" | "removed">; removed: string[] } | null = null;
  if (compared) {
    const d = diffDefinitions(compared.definition, definition);
    const marks: Record<string, "added" | "changed" | "removed"> = {};
    for (const id of d.added) marks[id] = "added";
    for (const id of d.changed) marks[id] = "changed";
    diff = { summary: describeDiff(d), marks, removed: d.removed };
  }

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

  // Keyboard shortcuts (listed in the editor's help).
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      const target = e.target as HTMLElement;
      if (target.closest("input, textarea, select, [contenteditable=true]")) return;
      const mod = e.ctrlKey || e.metaKey;
      const key = e.key.toLowerCase();
      if (mod && key === "z" && !e.shiftKey) doUndo();
      else if (mod && (key === "y" || (key === "z" && e.shiftKey))) doRedo();
      else if (mod && key === "c") copy();
      else if (mod && key === "v") paste();
      else if (mod && key === "d") {
        copy();
        paste();
      } else if (mod && key === "s") void save();
      else if (mod && key === "a") setNodes((ns) => ns.map((n) => ({ ...n, selected: true })));
      else if (!mod && key === "f") void flow.fitView({ padding: 0.2 });
      else if (!mod && key === "l") void tidy();
      else return;
      e.preventDefault();
    };
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  }, [doUndo, doRedo, copy, paste, save, tidy, flow, setNodes]);

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
      window.requestAnimationFrame(() => void flow.fitView({ padding: 0.2 }));
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
    return [...seen].filter((id) => draft.nodes.find((n) => n.id === id)?.type !== "start");
  }, [selected, draft]);

  const canvas = { rules, problems: byNode, statuses, diff: diff?.marks ?? {} };
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
          <button type="button" onClick={doUndo} disabled={history.past.length === 0} aria-keyshortcuts="Control+Z">
            Undo
          </button>
          <button type="button" onClick={doRedo} disabled={history.future.length === 0} aria-keyshortcuts="Control+Shift+Z">
            Redo
          </button>
          <button type="button" onClick={() => void tidy()} aria-keyshortcuts="L">
            Tidy up
          </button>
          <button type="button" onClick={exportJson}>
            Export
          </button>
          <label className="button-like">
            Import
            <input type="file" accept="application/json,.json" className="sr-only" onChange={(e) => e.target.files?.[0] && void importJson(e.target.files[0])} />
          </label>
          {workflowId && (
            <input aria-label="Version message" placeholder="Version message" value={versionMessage} onChange={(e) => setVersionMessage(e.target.value)} />
          )}
          <button type="button" className="primary" onClick={() => void save()} aria-keyshortcuts="Control+S" disabled={!dirty && workflowId !== null}>
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
              draggable
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
          <details className="shortcuts">
            <summary>Keyboard shortcuts</summary>
            <dl>
              <dt>Delete / Backspace</dt>
              <dd>delete the selection</dd>
              <dt>Ctrl+Z, Ctrl+Shift+Z</dt>
              <dd>undo, redo</dd>
              <dt>Ctrl+C, Ctrl+V, Ctrl+D</dt>
              <dd>copy, paste, duplicate</dd>
              <dt>Ctrl+A</dt>
              <dd>select every node</dd>
              <dt>Shift+drag, Shift+click</dt>
              <dd>select several</dd>
              <dt>F, L</dt>
              <dd>zoom to fit, tidy up (layout)</dd>
              <dt>Ctrl+S</dt>
              <dd>save</dd>
            </dl>
          </details>
        </nav>
        <div className="editor-canvas" onDragOver={(e) => e.preventDefault()} onDrop={onDrop} data-testid="editor-canvas">
          <CanvasContext.Provider value={canvas}>
            <ReactFlow
              nodes={nodes}
              edges={shownEdges}
              nodeTypes={nodeTypes}
              onNodesChange={onNodesChange}
              onEdgesChange={onEdgesChange}
              onConnect={onConnect}
              onNodeDragStop={() => commit(current())}
              deleteKeyCode={["Delete", "Backspace"]}
              multiSelectionKeyCode={["Shift", "Meta", "Control"]}
              selectionKeyCode="Shift"
              fitView
              fitViewOptions={{ maxZoom: 1, padding: 0.2 }}
              minZoom={0.05}
              proOptions={{ hideAttribution: true }}
              colorMode={document.documentElement.dataset.theme === "dark" ? "dark" : "light"}
            >
              <Background />
              <Controls />
              <MiniMap pannable zoomable />
            </ReactFlow>
          </CanvasContext.Provider>
        </div>
        <div className="editor-side">
          {selected ? (
            <Properties
              key={selected.id}
              node={selected}
              rules={rules[selected.type]}
              upstream={upstream}
              problems={byNode[selected.id] ?? []}
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
                  <label>
                    Compare with{" "}
                    <select value={compareWith} onChange={(e) => setCompareWith(e.target.value)}>
                      <option value="">–</option>
                      {versions.map((v) => (
                        <option key={v.id} value={v.version}>
                          version {v.version}
                        </option>
                      ))}
                    </select>
                  </label>
                  <ol className="version-list" reversed aria-label="Versions">
                    {versions.map((v) => (
                      <li key={v.id}>
                        <strong>v{v.version}</strong> <Time iso={v.createdAt} />
                        {v.author && <span className="muted"> by {v.author}</span>}
                        {v.message && <div className="small">{v.message}</div>}
                      </li>
                    ))}
                  </ol>
                  {diff && (
                    <p data-testid="compare-summary">
                      Your draft against version {compareWith}: {diff.summary}
                      {diff.removed.length > 0 && ` (removed nodes are not on the canvas)`}{" "}
                      {compared && (
                        <button
                          type="button"
                          onClick={() => {
                            const def = readDefinition(compared.definition);
                            commit(fromDefinition(def, dagreLayout(def)));
                            setMessage(`Version ${compared.version} restored into the draft: save to make it the newest version.`);
                          }}
                        >
                          Restore version {compared.version}
                        </button>
                      )}
                    </p>
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
