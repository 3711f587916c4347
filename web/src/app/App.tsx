import { QueryClientProvider } from "@tanstack/react-query";
import { lazy, Suspense } from "react";
import { BrowserRouter, Route, Routes, useParams } from "react-router";
import { Layout } from "../components/Layout";
import { Empty, Loading } from "../components/States";
import { useCredential } from "../lib/hooks";
import { queryClient } from "../lib/query";
import { AuditPage } from "../pages/audit/AuditPage";
import { DeadLettersPage } from "../pages/dead-letters/DeadLettersPage";
import { OverviewPage } from "../pages/overview/OverviewPage";
import { RunsPage } from "../pages/runs/RunsPage";
import { SettingsPage } from "../pages/settings/SettingsPage";
import { SignIn } from "../pages/signin/SignIn";
const WorkflowPage = lazy(() => import("../pages/workflows/WorkflowPage").then((m) => ({ default: m.WorkflowPage })));
import { WorkflowsPage } from "../pages/workflows/WorkflowsPage";

// The run page carries the graph library: loaded when first opened.
const RunPage = lazy(() => import("../pages/run/RunPage").then((m) => ({ default: m.RunPage })));

// A new run id is a new page: no live state of the previous run carries over.
function RunRoute() {
  const { id = "" } = useParams();
  return <RunPage key={id} />;
}

export function App() {
  const credential = useCredential();
  if (!credential) return <SignIn />;
  return (
    <QueryClientProvider client={queryClient}>
      <BrowserRouter basename="/ui">
        <Layout>
          <Suspense fallback={<Loading what="the page" />}>
            <Routes>
              <Route path="/" element={<OverviewPage />} />
              <Route path="/workflows" element={<WorkflowsPage />} />
              <Route path="/workflows/:id" element={<WorkflowPage />} />
              <Route path="/runs" element={<RunsPage />} />
              <Route path="/runs/:id" element={<RunRoute />} />
              <Route path="/dead-letters" element={<DeadLettersPage />} />
              <Route path="/audit" element={<AuditPage />} />
              <Route path="/settings" element={<SettingsPage />} />
              <Route path="*" element={<Empty>No such page.</Empty>} />
            </Routes>
          </Suspense>
        </Layout>
      </BrowserRouter>
    </QueryClientProvider>
  );
}
