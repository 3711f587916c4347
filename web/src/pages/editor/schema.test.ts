import { describe, expect, it } from "vitest";
import { fieldsOf } from "./schema";

describe("fieldsOf", () => {
  it("reads pydantic's schema: refs, optionals, enums, markers", () => {
    const schema = {
      $defs: {
        RetryPolicy: {
          type: "object",
          properties: { maxAttempts: { type: "integer", title: "Max Attempts", default: 3 } },
        },
      },
      type: "object",
      required: ["url"],
      properties: {
        method: { enum: ["GET", "POST"], type: "string", default: "GET" },
        url: { type: "string", "x-flowsync": "template" },
        retry: { anyOf: [{ $ref: "#/$defs/RetryPolicy" }, { type: "null" }], default: null },
        body: {},
        verify: { type: "boolean" },
      },
    };
    const fields = fieldsOf(schema);
    expect(fields.map((f) => [f.name, f.kind, f.required])).toEqual([
      ["method", "enum", false],
      ["url", "template", true],
      ["retry", "object", false],
      ["body", "json", false],
      ["verify", "boolean", false],
    ]);
    expect(fields[0]!.options).toEqual(["GET", "POST"]);
    expect(fields[2]!.fields.map((f) => f.name)).toEqual(["maxAttempts"]);
  });

  it("tells a template of one string from a template of any JSON", () => {
    const schema = {
      $defs: { JsonValue: {} },
      properties: {
        url: { type: "string", "x-flowsync": "template" },
        until: { anyOf: [{ type: "string" }, { type: "null" }], default: null, "x-flowsync": "template" },
        headers: { type: "object", additionalProperties: { type: "string" }, "x-flowsync": "template" },
        output: { $ref: "#/$defs/JsonValue", "x-flowsync": "template" },
        expression: { type: "string", "x-flowsync": "expression" },
      },
    };
    expect(fieldsOf(schema).map((f) => [f.name, f.kind, f.jsonTemplate])).toEqual([
      ["url", "template", false],
      ["until", "template", false],
      ["headers", "template", true],
      ["output", "template", true],
      ["expression", "expression", false],
    ]);
  });

  it("gives no fields for a type without data", () => {
    expect(fieldsOf(null)).toEqual([]);
  });
});
