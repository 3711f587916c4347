// Graph positions, memoised by the definition's structure; graphs above
// WORKER_THRESHOLD nodes are laid out in a Web Worker so the page stays responsive.
import { useEffect, useState } from "react";
import { structureKey, type Definition } from "./definition";
import { layout, storedPositions, type Positions } from "./layout";

const WORKER_THRESHOLD = 100;
const cache = new Map<string, Positions>();
let worker: Worker | null = null;
let nextId = 1;
const pending = new Map<number, (p: Positions) => void>();

function layoutInWorker(def: Definition): Promise<Positions> {
  if (worker === null) {
    worker = new Worker(new URL("./layout.worker.ts", import.meta.url), { type: "module" });
    worker.onmessage = (event: MessageEvent<{ id: number; positions: Positions }>) => {
      const resolve = pending.get(event.data.id);
      pending.delete(event.data.id);
      resolve?.(event.data.positions);
    };
  }
  const id = nextId++;
  return new Promise((resolve) => {
    pending.set(id, resolve);
    worker!.postMessage({ id, def });
  });
}

export function useLayout(def: Definition | null): Positions | null {
  const key = def ? structureKey(def) : "";
  const stored = def ? storedPositions(def) : null;
  const small = def !== null && def.nodes.length <= WORKER_THRESHOLD;
  const synchronous = def === null ? null : stored ?? cache.get(key) ?? (small ? layout(def) : null);
  if (def !== null && synchronous !== null && stored === null) cache.set(key, synchronous);
  const [fromWorker, setFromWorker] = useState<{ key: string; positions: Positions } | null>(null);

  useEffect(() => {
    if (def === null || synchronous !== null) return;
    let live = true;
    void layoutInWorker(def).then((positions) => {
      cache.set(key, positions);
      if (live) setFromWorker({ key, positions });
    });
    return () => {
      live = false;
    };
  }, [def, key, synchronous]);

  if (synchronous !== null) return synchronous;
  return fromWorker?.key === key ? fromWorker.positions : null;
}
