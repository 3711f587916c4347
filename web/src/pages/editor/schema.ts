// Reading the JSON Schema the server publishes for a node type's `data` (pydantic's
// model_json_schema): just enough to draw a form field per property.

export type FieldKind = "text" | "expression" | "template" | "integer" | "number" | "boolean" | "enum" | "object" | "json";

export interface Field {
  name: string;
  title: string;
  description: string;
  kind: FieldKind;
  required: boolean;
  options: string[];
  fields: Field[];
  defaultValue: unknown;
  /** A template that is any JSON value (an object of headers, a body, an output) rather
   * than one string: edited as JSON whose strings may hold `{{ }}`. */
  jsonTemplate: boolean;
}

type Schema = Record<string, unknown>;

function isSchema(v: unknown): v is Schema {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function resolve(schema: Schema, root: Schema): Schema {
  let s = schema;
  for (let i = 0; i < 10 && typeof s.$ref === "string"; i += 1) {
    const name = s.$ref.split("/").pop() ?? "";
    const defs = isSchema(root.$defs) ? root.$defs : {};
    const target = defs[name];
    s = isSchema(target) ? { ...target, ...Object.fromEntries(Object.entries(s).filter(([k]) => k !== "$ref")) } : {};
  }
  // Optional[X]: anyOf [X, null] is X.
  const any = Array.isArray(s.anyOf) ? s.anyOf.filter(isSchema) : null;
  if (any) {
    const nonNull = any.filter((a) => a.type !== "null");
    if (nonNull.length === 1) return resolve({ ...nonNull[0], title: s.title, description: s.description, default: s.default, "x-flowsync": s["x-flowsync"] ?? nonNull[0]!["x-flowsync"] }, root);
  }
  return s;
}

function kindOf(s: Schema): FieldKind {
  const marker = s["x-flowsync"];
  if (marker === "expression") return "expression";
  if (marker === "template") return "template";
  if (Array.isArray(s.enum)) return "enum";
  if (typeof s.const === "string") return "enum";
  switch (s.type) {
    case "string":
      return "text";
    case "integer":
      return "integer";
    case "number":
      return "number";
    case "boolean":
      return "boolean";
    case "object":
      return isSchema(s.properties) ? "object" : "json";
    default:
      return "json";
  }
}

export function fieldsOf(schema: unknown, root: unknown = schema): Field[] {
  if (!isSchema(schema) || !isSchema(root)) return [];
  const s = resolve(schema, root);
  const props = isSchema(s.properties) ? s.properties : {};
  const required = new Set(Array.isArray(s.required) ? (s.required as string[]) : []);
  return Object.entries(props).map(([name, raw]) => {
    const p = resolve(isSchema(raw) ? raw : {}, root);
    const kind = kindOf(p);
    return {
      name,
      title: typeof p.title === "string" ? p.title : name,
      description: typeof p.description === "string" ? p.description : "",
      kind,
      required: required.has(name),
      options: Array.isArray(p.enum) ? p.enum.map(String) : typeof p.const === "string" ? [p.const] : [],
      fields: kind === "object" ? fieldsOf(p, root) : [],
      defaultValue: p.default,
      jsonTemplate: kind === "template" && p.type !== "string",
    };
  });
}
