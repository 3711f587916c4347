// A textarea for an expression or a template that completes names as one types (see
// complete.ts): an ARIA combobox whose listbox follows the cursor's name. Arrows move,
// Enter or Tab accept, Escape closes, Ctrl+Space opens it before anything is typed.
import { useLayoutEffect, useRef, useState, type KeyboardEvent } from "react";
import { accept, complete, type Completion, type Upstream } from "./complete";

export function ExpressionInput({
  id,
  value,
  onChange,
  kind,
  upstream,
  invalid,
  describedBy,
  rows = 2,
}: {
  id: string;
  value: string;
  onChange: (text: string) => void;
  kind: "expression" | "template";
  upstream: Upstream[];
  invalid: boolean;
  describedBy: string | undefined;
  rows?: number;
}) {
  const ref = useRef<HTMLTextAreaElement>(null);
  const [open, setOpen] = useState<Completion | null>(null);
  const [active, setActive] = useState(0);
  // Where the cursor goes once an accepted suggestion's text is rendered.
  const cursorAfter = useRef<number | null>(null);
  // The suggestions' listbox (the field's help line is `${id}-hint`: ids stay unique).
  const listId = `${id}-list`;

  useLayoutEffect(() => {
    const at = cursorAfter.current;
    if (at === null || !ref.current) return;
    cursorAfter.current = null;
    ref.current.setSelectionRange(at, at);
  }, [value]);

  const suggest = (text: string, cursor: number, explicit: boolean) => {
    const c = complete(text, cursor, upstream, kind, explicit);
    setOpen(c);
    setActive(0);
  };

  const take = (index: number) => {
    if (!open) return;
    const item = open.items[index];
    if (!item) return;
    const next = accept(value, open, item);
    cursorAfter.current = next.cursor;
    onChange(next.text);
    // `steps.` and a step's id lead on to the next level.
    if (item.more) suggest(next.text, next.cursor, false);
    else setOpen(null);
  };

  const onKeyDown = (e: KeyboardEvent<HTMLTextAreaElement>) => {
    if (e.key === " " && e.ctrlKey) {
      e.preventDefault();
      suggest(value, e.currentTarget.selectionStart, true);
      return;
    }
    if (!open) return;
    if (e.key === "ArrowLeft" || e.key === "ArrowRight" || (e.key === "Home" && !e.ctrlKey) || (e.key === "End" && !e.ctrlKey)) {
      setOpen(null); // the cursor leaves the name the list was for
      return;
    }
    const n = open.items.length;
    if (e.key === "ArrowDown") setActive((a) => (a + 1) % n);
    else if (e.key === "ArrowUp") setActive((a) => (a - 1 + n) % n);
    else if (e.key === "Home" && e.ctrlKey) setActive(0);
    else if (e.key === "End" && e.ctrlKey) setActive(n - 1);
    else if ((e.key === "Enter" && !e.shiftKey) || e.key === "Tab") take(active);
    else if (e.key === "Escape") setOpen(null);
    else return;
    e.preventDefault();
    e.stopPropagation();
  };

  const expanded = open !== null;
  const activeId = expanded ? `${listId}-${active}` : undefined;
  return (
    <div className="completion">
      <textarea
        ref={ref}
        id={id}
        className="mono"
        rows={rows}
        value={value}
        spellCheck={false}
        autoComplete="off"
        role="combobox"
        aria-autocomplete="list"
        aria-expanded={expanded}
        aria-controls={listId}
        aria-activedescendant={activeId}
        aria-invalid={invalid}
        aria-describedby={describedBy}
        onChange={(e) => {
          onChange(e.target.value);
          suggest(e.target.value, e.target.selectionStart, false);
        }}
        onKeyDown={onKeyDown}
        onClick={() => setOpen(null)}
        onBlur={() => setOpen(null)}
      />
      <ul id={listId} role="listbox" className="completion-list" aria-label="Names" hidden={!expanded}>
        {open?.items.map((s, i) => (
          <li
            key={s.label}
            id={`${listId}-${i}`}
            role="option"
            aria-selected={i === active}
            // Keep the focus in the textarea: a click picks, it does not blur.
            onMouseDown={(e) => {
              e.preventDefault();
              take(i);
            }}
            onMouseEnter={() => setActive(i)}
          >
            <span className="mono">{s.label}</span> <span className="muted small">{s.detail}</span>
          </li>
        ))}
      </ul>
    </div>
  );
}
