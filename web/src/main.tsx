import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import { App } from "./app/App";
import { consumeFragmentKey } from "./lib/auth";
import { queryClient } from "./lib/query";
import { onCredentialChange } from "./lib/auth";
import "./styles.css";

consumeFragmentKey(window.location, window.history);
// Another credential sees other data: forget everything cached for the previous one.
onCredentialChange(() => queryClient.clear());

createRoot(document.getElementById("root")!).render(
  <StrictMode>
    <App />
  </StrictMode>,
);
