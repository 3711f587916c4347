import { useEffect, useState } from "react";
import { CheckExpressionDocument } from "../../gql/graphql";
import { request } from "../../lib/api";
import type { Upstream } from "./complete";
import { ExpressionInput } from "./ExpressionInput";
import { isValidNodeId, type EditorNode, type NodeRules } from "./model";
import { fieldsOf, type Field } from "./schema";

type Data = Record<string, unknown>;

/** `data` with `key` set to `value`, or without `key` when `value` is undefined. */
function withValue(data: Data, key: string, value: unknown): Data {
  const rest = Object.fromEntries(Object.entries(data).filter(([k]) => k !== key));
  return value === undefined ? rest : { ...rest, [key]: value };
}

/** The server's syntax check of an expression or template, 300 ms after typing stops. */
function useExpressionCheck(text: string, kind: "EXPRESSION" | "TEMPLATE" | null): string[] {
  const [result, setResult] = useState<{ text: string; problems: string[] }>({ text: "", problems: [] });
  useEffect(() => {
    if (kind === null || !text.trim()) return;
    const timer = window.setTimeout(() => {
      request(CheckExpressionDocument, { expression: text, kind })
        .then((r) =>
          setResult({
            text,
            problems: r.checkExpression.problems.map((p) => (p.position != null ? `at ${p.position}: ${p.message}` : p.message)),
          }),
        )
        .catch(() => undefined);
    }, 300);
    return () => window.clearTimeout(timer);
  }, [text, kind]);
  return result.text === text ? result.problems : [];
}

/** The server's problems with a node's fields, by field path as FieldInput names them
 * (`url`, `retry-max`); `general` holds those about no one field. */
export function problemsByField(problems: NodeProblem[]): { byField: Record<string, string[]>; general: string[] } {
  const byField: Record<string, string[]> = {};
  const general: string[] = [];
  for (const p of problems) {
    const m = /^\$(?:\.definition)?\.nodes\[\d+\]\.data\.([A-Za-z0-9_.]+)$/.exec(p.path);
    if (m) (byField[m[1]!.split(".").join("-")] ??= []).push(p.message);
    else general.push(p.message);
  }
  return { byField, general };
}

/** Why `id` cannot be a node's new id (null: it can). */
export function idProblem(id: string, otherIds: string[]): string | null {
  if (!isValidNodeId(id)) return "An id starts with a letter or _, then letters, digits, _ or - (at most 64): change it.";
  if (otherIds.includes(id)) return `Another node already has the id ${id}: choose another.`;
  return null;
}

export interface NodeProblem {
  path: string;
  message: string;
}

function FieldInput({
  field,
  value,
  onChange,
  path,
  upstream,
  problems,
}: {
  field: Field;
  value: unknown;
  onChange: (v: unknown) => void;
  path: string;
  upstream: Upstream[];
  problems: Record<string, string[]>;
}) {
  const id = `prop-${path}`;
  // The server's problems with this field ("is required"), shown under it and attached
  // to its input (aria-invalid, aria-describedby) so that a screen reader reads them too.
  const own = problems[path] ?? [];
  const problemId = own.length ? `${id}-problem` : null;
  const problemText = own.length ? (
    <p id={`${id}-problem`} className="field-error" data-testid="field-problem">
      {own.map((m) => `${field.title} ${m}`).join("; ")}
    </p>
  ) : null;
  const describedBy = (...ids: (string | null | false | undefined)[]) => ids.filter(Boolean).join(" ") || undefined;
  const [jsonText, setJsonText] = useState(() => (value === undefined ? "" : JSON.stringify(value, null, 2)));
  const [jsonError, setJsonError] = useState<string | null>(null);
  // A JSON template's placeholders are checked with the whole draft (its problems are
  // pinned on the node); a one-string template and an expression are checked here.
  const checkKind = field.kind === "expression" ? "EXPRESSION" : field.kind === "template" && !field.jsonTemplate ? "TEMPLATE" : null;
  const syntax = useExpressionCheck(typeof value === "string" ? value : "", checkKind);
  /** JSON typed into a field: kept as text, passed on once it parses. */
  const changeJson = (text: string) => {
    setJsonText(text);
    if (!text.trim()) {
      setJsonError(null);
      onChange(undefined);
      return;
    }
    try {
      onChange(JSON.parse(text));
      setJsonError(null);
    } catch (err) {
      setJsonError(`Not JSON: ${(err as Error).message}`);
    }
  };
  const label = (
    <label htmlFor={id}>
      {field.title}
      {field.required && <span aria-hidden="true"> *</span>}
    </label>
  );
  const help = field.description ? <p className="muted small">{field.description}</p> : null;
  switch (field.kind) {
    case "boolean":
      return (
        <div className="field">
          <label>
            <input
              id={id}
              type="checkbox"
              checked={value === true}
              aria-invalid={problemId !== null || undefined}
              aria-describedby={describedBy(problemId)}
              onChange={(e) => onChange(e.target.checked)}
            />{" "}
            {field.title}
          </label>
          {problemText}
          {help}
        </div>
      );
    case "enum":
      return (
        <div className="field">
          {label}
          <select
            id={id}
            value={typeof value === "string" ? value : ""}
            aria-invalid={problemId !== null || undefined}
            aria-describedby={describedBy(problemId)}
            onChange={(e) => onChange(e.target.value || undefined)}
          >
            <option value="">{field.defaultValue !== undefined ? `default (${String(field.defaultValue)})` : "–"}</option>
            {field.options.map((o) => (
              <option key={o} value={o}>
                {o}
              </option>
            ))}
          </select>
          {problemText}
          {help}
        </div>
      );
    case "integer":
    case "number":
      return (
        <div className="field">
          {label}
          <input
            id={id}
            type="number"
            step={field.kind === "integer" ? 1 : "any"}
            value={typeof value === "number" ? value : ""}
            placeholder={field.defaultValue !== undefined && field.defaultValue !== null ? String(field.defaultValue) : ""}
            aria-invalid={problemId !== null || undefined}
            aria-describedby={describedBy(problemId)}
            onChange={(e) => onChange(e.target.value === "" ? undefined : Number(e.target.value))}
          />
          {problemText}
          {help}
        </div>
      );
    case "object":
      return (
        <fieldset className="field nested" aria-describedby={describedBy(problemId)}>
          <legend>{field.title}</legend>
          {problemText}
          {help}
          {field.fields.map((f) => (
            <FieldInput
              key={f.name}
              field={f}
              path={`${path}-${f.name}`}
              upstream={upstream}
              problems={problems}
              value={(value as Data | undefined)?.[f.name]}
              onChange={(v) => {
                const next = withValue((value as Data | undefined) ?? {}, f.name, v);
                onChange(Object.keys(next).length ? next : undefined);
              }}
            />
          ))}
        </fieldset>
      );
    case "json":
      return (
        <div className="field">
          {label}
          <textarea
            id={id}
            className="mono"
            rows={4}
            value={jsonText}
            aria-invalid={jsonError !== null || problemId !== null}
            aria-describedby={describedBy(jsonError && `${id}-json`, problemId)}
            onChange={(e) => changeJson(e.target.value)}
          />
          {jsonError && (
            <p id={`${id}-json`} className="field-error">
              {jsonError}
            </p>
          )}
          {problemText}
          {help}
        </div>
      );
    case "expression":
    case "template":
      return (
        <div className="field">
          {label}
          <ExpressionInput
            id={id}
            kind={field.kind}
            upstream={upstream}
            rows={field.jsonTemplate ? 4 : 2}
            value={field.jsonTemplate ? jsonText : typeof value === "string" ? value : ""}
            onChange={(text) => (field.jsonTemplate ? changeJson(text) : onChange(text === "" ? undefined : text))}
            invalid={syntax.length > 0 || (field.jsonTemplate && jsonError !== null) || problemId !== null}
            describedBy={describedBy(syntax.length > 0 && `${id}-syntax`, field.jsonTemplate && jsonError && `${id}-json`, problemId, `${id}-hint`)}
          />
          {problemText}
          {syntax.length > 0 && (
            <p id={`${id}-syntax`} className="field-error" data-testid="syntax-problem">
              {syntax.join("; ")}
            </p>
          )}
          {field.jsonTemplate && jsonError && (
            <p id={`${id}-json`} className="field-error">
              {jsonError}
            </p>
          )}
          <p id={`${id}-hint`} className="muted small">
            {field.jsonTemplate ? "JSON; a string in it may hold {{ }} with " : field.kind === "template" ? "Inside {{ }}: " : "Names: "}
            <code>input</code>
            {upstream.length > 0 && (
              <>
                , <code>steps.&lt;id&gt;.output</code> and <code>.status</code> of {upstream.map((u) => u.id).join(", ")}
              </>
            )}
            . Type to complete, or press Ctrl+Space.
          </p>
          {help}
        </div>
      );
    default:
      return (
        <div className="field">
          {label}
          <textarea
            id={id}
            rows={1}
            value={typeof value === "string" ? value : ""}
            aria-invalid={problemId !== null || undefined}
            aria-describedby={describedBy(problemId)}
            onChange={(e) => onChange(e.target.value === "" ? undefined : e.target.value)}
          />
          {problemText}
          {help}
        </div>
      );
  }
}

export function Properties({
  node,
  rules,
  upstream,
  onChange,
  onRename,
  problems,
  otherIds,
}: {
  node: EditorNode;
  rules: NodeRules | undefined;
  upstream: Upstream[];
  onChange: (data: Data, label: string | undefined) => void;
  onRename: (id: string) => string | null;
  problems: NodeProblem[];
  /** The ids of the draft's other nodes: a new id must be none of them. */
  otherIds: string[];
}) {
  const fields = fieldsOf(rules?.dataSchema ?? null);
  const { byField, general } = problemsByField(problems);
  const [idText, setIdText] = useState(node.id);
  const [renameError, setRenameError] = useState<string | null>(null);
  // Checked as one types, and the typing kept while it is wrong (a clash used to be put
  // back to the old id on blur, which looked like the rename was silently undone): the
  // node keeps its id until the new one is valid and is applied (Enter or leaving the field).
  const idError = idText === node.id ? null : (idProblem(idText, otherIds) ?? renameError);
  const applyId = () => {
    if (idText === node.id || idProblem(idText, otherIds)) return;
    setRenameError(onRename(idText));
  };
  return (
    <aside className="panel editor-panel" aria-labelledby="props-title" data-testid="properties">
      <h2 id="props-title">
        {rules?.label ?? node.type} <span className="muted">properties</span>
      </h2>
      {rules?.description && <p className="muted small">{rules.description}</p>}
      {general.length > 0 && (
        <ul className="problems error-box">
          {general.map((p, i) => (
            <li key={i}>{p}</li>
          ))}
        </ul>
      )}
      <div className="field">
        <label htmlFor="node-id">Id</label>
        <input
          id="node-id"
          value={idText}
          aria-invalid={idError !== null || undefined}
          aria-describedby={idError ? "node-id-error" : undefined}
          onChange={(e) => {
            setIdText(e.target.value);
            setRenameError(null);
          }}
          onBlur={applyId}
          onKeyDown={(e) => {
            if (e.key === "Enter") applyId();
            else if (e.key === "Escape") setIdText(node.id);
          }}
        />
        {idError && (
          <p id="node-id-error" className="field-error" role="alert" data-testid="node-id-error">
            {idError} The node keeps the id {node.id} until then (Escape puts it back).
          </p>
        )}
      </div>
      <div className="field">
        <label htmlFor="node-label">Label</label>
        <input id="node-label" value={node.label ?? ""} onChange={(e) => onChange(node.data, e.target.value || undefined)} />
      </div>
      {fields.length === 0 ? (
        <p className="muted">A {node.type} node has no settings.</p>
      ) : (
        fields.map((f) => (
          <FieldInput
            key={`${node.id}-${f.name}`}
            field={f}
            path={f.name}
            upstream={upstream}
            problems={byField}
            value={node.data[f.name]}
            onChange={(v) => onChange(withValue(node.data, f.name, v), node.label)}
          />
        ))
      )}
    </aside>
  );
}
