import { describe, expect, it } from "vitest";
import { accept, complete, type Upstream } from "./complete";

const upstream: Upstream[] = [
  { id: "fetch", type: "action", label: "Fetch the order" },
  { id: "fan", type: "fork" },
  { id: "my-step", type: "transform" },
];

/** The labels offered with the cursor where `|` is. */
function labels(marked: string, kind: "expression" | "template" = "expression", explicit = false): string[] | null {
  const cursor = marked.indexOf("|");
  const text = marked.replace("|", "");
  return complete(text, cursor, upstream, kind, explicit)?.items.map((s) => s.label) ?? null;
}

/** The text (with `|` at the cursor) after accepting the suggestion labelled `label`. */
function accepting(marked: string, label: string, kind: "expression" | "template" = "expression"): string {
  const cursor = marked.indexOf("|");
  const text = marked.replace("|", "");
  const c = complete(text, cursor, upstream, kind);
  const item = c?.items.find((s) => s.label === label);
  if (!c || !item) throw new Error(`${label} is not offered at ${marked}`);
  const out = accept(text, c, item);
  return `${out.text.slice(0, out.cursor)}|${out.text.slice(out.cursor)}`;
}

describe("complete", () => {
  it("offers the top-level names from their first letters", () => {
    expect(labels("s|")).toEqual(["steps"]);
    expect(labels("in|")).toEqual(["input"]);
    expect(labels("e|")).toEqual(["execution"]);
    expect(labels("x == 1 && t|")).toEqual(["trigger"]);
  });

  it("lists every top-level name on request, and nothing unasked before a letter", () => {
    expect(labels("|")).toBeNull();
    expect(labels("|", "expression", true)).toEqual(["input", "steps", "execution", "trigger"]);
  });

  it("offers the upstream node ids after steps.", () => {
    expect(labels("steps.|")).toEqual(["fetch", "fan", "my-step"]);
    expect(labels("steps.f|")).toEqual(["fetch", "fan"]);
    expect(labels("steps.te|")).toEqual(["my-step"]); // contains, after the prefix matches
    expect(labels("size(steps.fe|)")).toEqual(["fetch"]);
  });

  it("offers output and status after steps.<id>.", () => {
    expect(labels("steps.fetch.|")).toEqual(["output", "status"]);
    expect(labels("steps.fetch.st|")).toEqual(["status"]);
    expect(labels('steps["my-step"].|')).toEqual(["output", "status"]);
  });

  it("offers nothing for a step that is not upstream, nor deeper than output", () => {
    expect(labels("steps.later.|")).toBeNull();
    expect(labels("steps.fetch.output.|")).toBeNull();
    expect(labels("input.|")).toBeNull();
  });

  it("offers no steps when nothing is upstream", () => {
    expect(complete("s", 1, [], "expression")).toBeNull();
    expect(complete("steps.", 6, [], "expression")).toBeNull();
  });

  it("offers nothing inside a string literal or after another value's member", () => {
    expect(labels('input.name == "st|')).toBeNull();
    expect(labels("input.name == 'a\\' st|")).toBeNull();
    expect(labels('input.name == "x" && st|')).toEqual(["steps"]);
    expect(labels("input.st|")).toBeNull();
    expect(labels("input.steps.|")).toBeNull();
  });

  it("completes a template only inside {{ }}", () => {
    expect(labels("Order st|", "template")).toBeNull();
    expect(labels("Order {{ st|", "template")).toEqual(["steps"]);
    expect(labels("Order {{ steps.fetch.|", "template")).toEqual(["output", "status"]);
    expect(labels("{{ input.id }} st|", "template")).toBeNull();
    expect(labels("{{ input.id }} and {{ steps.|", "template")).toEqual(["fetch", "fan", "my-step"]);
  });

  it("knows execution's and trigger's fields", () => {
    expect(labels("execution.|")).toEqual(["id", "workflowId", "version", "startedAt"]);
    expect(labels("trigger.b|")).toEqual(["body"]);
  });

  it("closes once what is typed is the one name left", () => {
    expect(labels("input|")).toBeNull();
    expect(labels("steps.fetch.output|")).toBeNull();
    expect(labels("steps|")).toEqual(["steps"]); // accepting it adds the dot and goes on
  });

  it("accepting replaces the partial name and leads on to the next level", () => {
    expect(accepting("st|", "steps")).toBe("steps.|");
    expect(accepting("steps.fe| == 1", "fetch")).toBe("steps.fetch.| == 1");
    expect(accepting("steps.fetch.o|", "output")).toBe("steps.fetch.output|");
    expect(accepting("steps.m|", "my-step")).toBe('steps["my-step"].|');
    expect(accepting("Hi {{ in| }}", "input", "template")).toBe("Hi {{ input| }}");
  });
});
