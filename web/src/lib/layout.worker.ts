// Lays out large graphs off the main thread.
import type { Definition } from "./definition";
import { layout } from "./layout";

self.onmessage = (event: MessageEvent<{ id: number; def: Definition }>) => {
  const { id, def } = event.data;
  self.postMessage({ id, positions: layout(def) });
};
