// The editor's keyboard shortcuts, as its help lists them. Each one is tried by
// tests/browser/test_editor.py, which also checks that this list names no other.

export const SHORTCUTS: [keys: string, does: string][] = [
  ["Delete / Backspace", "delete the selection"],
  ["Arrow keys, Shift+arrow", "move the selected nodes (Shift: farther)"],
  ["Ctrl+Z, Ctrl+Shift+Z", "undo, redo"],
  ["Ctrl+C, Ctrl+V, Ctrl+D", "copy, paste, duplicate"],
  ["Ctrl+A", "select every node"],
  ["Shift+drag, Shift+click", "select several"],
  ["F, L", "zoom to fit, tidy up (layout)"],
  ["Ctrl+S", "save"],
  ["Ctrl+Space", "in an expression: suggest names (arrows, Enter or Tab, Escape)"],
];

export function Shortcuts() {
  return (
    <details className="shortcuts">
      <summary>Keyboard shortcuts</summary>
      <dl>
        {SHORTCUTS.map(([keys, does]) => (
          <div key={keys}>
            <dt>{keys}</dt>
            <dd>{does}</dd>
          </div>
        ))}
      </dl>
    </details>
  );
}
