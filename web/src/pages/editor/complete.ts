// Completion of the names an expression or a template may use (docs/workflow-definition.md,
// "Expressions and templates"): `input`, `steps.<nodeId>.output` and `.status` for the
// steps upstream of the node being edited, `execution` and `trigger`. Pure: the text, the
// cursor and the upstream steps in, the suggestions out; ExpressionInput draws them.

export interface Upstream {
  id: string;
  type: string;
  label?: string;
}

export interface Suggestion {
  /** What the list shows. */
  label: string;
  /** What replaces the text between `from` and `to`. */
  insert: string;
  detail: string;
  /** Accepting it leads to another level (`steps.` to the node ids, and so on). */
  more: boolean;
}

export interface Completion {
  from: number;
  to: number;
  items: Suggestion[];
}

const IDENT = /^[A-Za-z_][A-Za-z0-9_]*$/;
const LIMIT = 50;

const FIELDS: Record<string, [string, string][]> = {
  execution: [
    ["id", "this run's id"],
    ["workflowId", "the workflow's id"],
    ["version", "the workflow version the run is pinned to"],
    ["startedAt", "when the run started"],
  ],
  trigger: [
    ["type", "manual, schedule or webhook"],
    ["headers", "a webhook's request headers"],
    ["query", "a webhook's query parameters"],
    ["body", "a webhook's request body"],
  ],
};

/** Where the expression being typed starts, or null when the cursor is not in one (a
 * template's text outside `{{ }}`). */
function expressionStart(before: string, kind: "expression" | "template"): number | null {
  if (kind === "expression") return 0;
  const open = before.lastIndexOf("{{");
  if (open < 0 || before.indexOf("}}", open) >= 0) return null;
  return open + 2;
}

/** Whether `text` ends inside a string literal. */
function inString(text: string): boolean {
  let quote: string | null = null;
  for (let i = 0; i < text.length; i += 1) {
    const c = text[i];
    if (quote) {
      if (c === "\\") i += 1;
      else if (c === quote) quote = null;
    } else if (c === '"' || c === "'") quote = c;
  }
  return quote !== null;
}

/** Items whose label starts with `partial` (case-insensitively) first, then those that
 * contain it; none when the only one is exactly what is already typed and leads nowhere. */
function rank(items: Suggestion[], partial: string): Suggestion[] {
  const p = partial.toLowerCase();
  const starts = items.filter((s) => s.label.toLowerCase().startsWith(p));
  const contains = items.filter((s) => !s.label.toLowerCase().startsWith(p) && s.label.toLowerCase().includes(p));
  const out = [...starts, ...contains].slice(0, LIMIT);
  if (out.length === 1 && !out[0]!.more && out[0]!.label === partial) return [];
  return out;
}

/**
 * The suggestions for the name being typed at `cursor` in `text`.
 *
 * `explicit` (Ctrl+Space) also lists the top-level names before anything is typed.
 * Returns null where nothing fits: inside a string literal, outside a template's `{{ }}`,
 * after a member of something that is not a known name.
 */
export function complete(
  text: string,
  cursor: number,
  upstream: Upstream[],
  kind: "expression" | "template",
  explicit = false,
): Completion | null {
  const before = text.slice(0, cursor);
  const start = expressionStart(before, kind);
  if (start === null) return null;
  const expr = before.slice(start);
  if (inString(expr)) return null;
  /** `items` ranked against `partial`, replacing it (and `extra` characters before it). */
  const result = (partial: string, items: Suggestion[], extra = 0): Completion | null => {
    const ranked = rank(items, partial);
    return ranked.length ? { from: cursor - partial.length - extra, to: cursor, items: ranked } : null;
  };

  // steps.<id>.| or steps["<id>"].| : the step's output and status.
  const member = /(?<![\w.\]])steps(?:\.([A-Za-z_]\w*)|\[\s*"([^"]*)"\s*\]|\[\s*'([^']*)'\s*\])\.(\w*)$/.exec(expr);
  if (member) {
    const id = member[1] ?? member[2] ?? member[3] ?? "";
    const step = upstream.find((u) => u.id === id);
    if (!step) return null;
    return result(member[4]!, [
      { label: "output", insert: "output", detail: `what ${id} returned`, more: false },
      { label: "status", insert: "status", detail: "COMPLETED, FAILED, SKIPPED…", more: false },
    ]);
  }
  // steps.| : the upstream steps. The dot is replaced too, so that an id that is not a
  // CEL identifier (it may hold "-") becomes steps["my-id"].
  const steps = /(?<![\w.\]])steps\.(\w*)$/.exec(expr);
  if (steps) {
    const items = upstream.map((u) => ({
      label: u.id,
      insert: IDENT.test(u.id) ? `.${u.id}.` : `["${u.id}"].`,
      detail: u.label && u.label !== u.id ? `${u.type}: ${u.label}` : u.type,
      more: true,
    }));
    return result(steps[1]!, items, 1);
  }
  // execution.| and trigger.|
  const known = /(?<![\w.\]])(execution|trigger)\.(\w*)$/.exec(expr);
  if (known) {
    const items = FIELDS[known[1]!]!.map(([name, detail]) => ({ label: name, insert: name, detail, more: false }));
    return result(known[2]!, items);
  }
  // A name at the top level.
  const name = /(?<![\w.\]"'])([A-Za-z_]\w*)?$/.exec(expr);
  if (!name) return null;
  const partial = name[1] ?? "";
  if (!partial && !explicit) return null;
  const top: Suggestion[] = [{ label: "input", insert: "input", detail: "the run's input", more: false }];
  if (upstream.length) top.push({ label: "steps", insert: "steps.", detail: "the steps upstream of this one", more: true });
  top.push({ label: "execution", insert: "execution.", detail: "id, workflowId, version, startedAt", more: true });
  top.push({ label: "trigger", insert: "trigger.", detail: "type; a webhook's headers, query, body", more: true });
  // A top-level name is only offered from its start (no "contains" matches: `put` is
  // more likely a new word than `input`).
  const ranked = top.filter((s) => s.label.toLowerCase().startsWith(partial.toLowerCase()));
  if (ranked.length === 0 || (ranked.length === 1 && !ranked[0]!.more && ranked[0]!.label === partial)) return null;
  return { from: cursor - partial.length, to: cursor, items: ranked };
}

/** The text and cursor after accepting `item` of `completion`. */
export function accept(text: string, completion: Completion, item: Suggestion): { text: string; cursor: number } {
  const next = text.slice(0, completion.from) + item.insert + text.slice(completion.to);
  return { text: next, cursor: completion.from + item.insert.length };
}
