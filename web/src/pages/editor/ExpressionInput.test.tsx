import { fireEvent, render, screen } from "@testing-library/react";
import { useState } from "react";
import { describe, expect, it } from "vitest";
import { ExpressionInput } from "./ExpressionInput";

function Field() {
  const [value, setValue] = useState("");
  return (
    <>
      <label htmlFor="f">Expression</label>
      <ExpressionInput
        id="f"
        value={value}
        onChange={setValue}
        kind="expression"
        upstream={[
          { id: "fetch", type: "action" },
          { id: "shape", type: "transform" },
        ]}
        invalid={false}
        describedBy={undefined}
      />
    </>
  );
}

function type(field: HTMLTextAreaElement, text: string) {
  fireEvent.change(field, { target: { value: text, selectionStart: text.length, selectionEnd: text.length } });
}

describe("ExpressionInput", () => {
  it("is a combobox whose active option follows the arrows and is taken with Enter", () => {
    render(<Field />);
    const field = screen.getByRole<HTMLTextAreaElement>("combobox", { name: "Expression" });
    expect(field.getAttribute("aria-expanded")).toBe("false");
    type(field, "steps.");
    expect(field.getAttribute("aria-expanded")).toBe("true");
    const options = screen.getAllByRole("option");
    expect(options.map((o) => o.textContent)).toEqual(["fetch action", "shape transform"]);
    expect(field.getAttribute("aria-activedescendant")).toBe(options[0]!.id);
    fireEvent.keyDown(field, { key: "ArrowDown" });
    expect(field.getAttribute("aria-activedescendant")).toBe(options[1]!.id);
    expect(options[1]!.getAttribute("aria-selected")).toBe("true");
    fireEvent.keyDown(field, { key: "ArrowDown" }); // wraps round
    fireEvent.keyDown(field, { key: "ArrowUp" });
    fireEvent.keyDown(field, { key: "Enter" });
    expect(field.value).toBe("steps.shape.");
    // The next level opens at once.
    expect(screen.getAllByRole("option").map((o) => o.textContent?.split(" ")[0])).toEqual(["output", "status"]);
    fireEvent.keyDown(field, { key: "Tab" });
    expect(field.value).toBe("steps.shape.output");
    expect(field.getAttribute("aria-expanded")).toBe("false");
  });

  it("closes on Escape, opens on Ctrl+Space, picks on a click", () => {
    render(<Field />);
    const field = screen.getByRole<HTMLTextAreaElement>("combobox", { name: "Expression" });
    type(field, "s");
    fireEvent.keyDown(field, { key: "Escape" });
    expect(field.getAttribute("aria-expanded")).toBe("false");
    type(field, "");
    fireEvent.keyDown(field, { key: " ", ctrlKey: true });
    expect(screen.getAllByRole("option")).toHaveLength(4);
    fireEvent.mouseDown(screen.getAllByRole("option")[0]!);
    expect(field.value).toBe("input");
  });
});
