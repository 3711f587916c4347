import { QueryClientProvider } from "@tanstack/react-query";
import { lazy, Suspense, useState } from "react";
import { createBrowserRouter, Outlet, RouterProvider, useParams } from "react-router";
import { Layout } from "../components/Layout";
import { Empty, Loading } from "../components/States";
import { useCredential } from "../lib/hooks";
import { isCallback } from "../lib/oidc";
import { queryClient } from "../lib/query";
import { AuditPage } from "../pages/audit/AuditPage";
import { DeadLettersPage } from "../pages/dead-letters/DeadLettersPage";
import { OverviewPage } from "../pages/overview/OverviewPage";
import { RunsPage } from "../pages/runs/RunsPage";
import { SettingsPage } from "../pages/settings/SettingsPage";
import { SignIn } from "../pages/signin/SignIn";
import { SignInCallback } from "../pages/signin/SignInCallback";
import { WorkflowsPage } from "../pages/workflows/WorkflowsPage";

// Pages that carry the graph library load when first opened; the editor's code (and
// elkjs behind its layout button) only when the editor opens.
const RunPage = lazy(() => import("../pages/run/RunPage").then((m) => ({ default: m.RunPage })));
const WorkflowPage = lazy(() => import("../pages/workflows/WorkflowPage").then((m) => ({ default: m.WorkflowPage })));
const EditorPage = lazy(() => import("../pages/editor/EditorPage").then((m) => ({ default: m.EditorPage })));

// A new id is a new page: no state of the previous run or workflow carries over.
function RunRoute() {
  const { id = "" } = useParams();
  return <RunPage key={id} />;
}

function EditorRoute() {
  const { id } = useParams();
  return <EditorPage key={id ?? "new"} workflowId={id ?? null} />;
}

function Shell() {
  return (
    <Layout>
      <Suspense fallback={<Loading what="the page" />}>
        <Outlet />
      </Suspense>
    </Layout>
  );
}

// Made when first shown, so that it starts from the address the sign-in left (a router
// reads the location once, when it is made).
let router: ReturnType<typeof createBrowserRouter> | null = null;
const makeRouter = () => createBrowserRouter(
  [
    {
      element: <Shell />,
      children: [
        { path: "/", element: <OverviewPage /> },
        { path: "/workflows", element: <WorkflowsPage /> },
        { path: "/workflows/new", element: <EditorRoute /> },
        { path: "/workflows/:id", element: <WorkflowPage /> },
        { path: "/workflows/:id/edit", element: <EditorRoute /> },
        { path: "/runs", element: <RunsPage /> },
        { path: "/runs/:id", element: <RunRoute /> },
        { path: "/dead-letters", element: <DeadLettersPage /> },
        { path: "/audit", element: <AuditPage /> },
        { path: "/settings", element: <SettingsPage /> },
        { path: "*", element: <Empty>No such page.</Empty> },
      ],
    },
  ],
  { basename: "/ui" },
);

export function App() {
  const credential = useCredential();
  const [callback, setCallback] = useState(() => isCallback(window.location));
  if (callback) return <SignInCallback onDone={() => setCallback(false)} />;
  if (!credential) return <SignIn />;
  router ??= makeRouter();
  return (
    <QueryClientProvider client={queryClient}>
      <RouterProvider router={router} />
    </QueryClientProvider>
  );
}
