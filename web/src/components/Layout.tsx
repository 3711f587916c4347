import { useEffect, useState, type ReactNode } from "react";
import { NavLink } from "react-router";
import { signOut } from "../lib/auth";
import { useLinkState } from "../lib/hooks";

const NAV: [string, string][] = [
  ["/", "Overview"],
  ["/workflows", "Workflows"],
  ["/runs", "Runs"],
  ["/dead-letters", "Dead letters"],
  ["/audit", "Audit log"],
  ["/settings", "API keys"],
];

type Theme = "light" | "dark";

function initialTheme(): Theme {
  const saved = window.sessionStorage.getItem("flowsync.theme");
  if (saved === "light" || saved === "dark") return saved;
  return window.matchMedia?.("(prefers-color-scheme: dark)").matches ? "dark" : "light";
}

export function useTheme(): [Theme, (t: Theme) => void] {
  const [theme, setTheme] = useState<Theme>(initialTheme);
  useEffect(() => {
    document.documentElement.dataset.theme = theme;
    window.sessionStorage.setItem("flowsync.theme", theme);
  }, [theme]);
  return [theme, setTheme];
}

function LinkIndicator() {
  const state = useLinkState();
  const label =
    state === "connected" ? "Live" : state === "reconnecting" ? "Reconnecting…" : state === "connecting" ? "Connecting…" : "Idle";
  return (
    <span className="link-state" data-state={state} data-testid="link-state" role="status" aria-live="polite">
      <span className="badge-dot" aria-hidden="true" />
      {label}
    </span>
  );
}

export function Layout({ children }: { children: ReactNode }) {
  const [theme, setTheme] = useTheme();
  return (
    <div className="shell">
      <a className="skip" href="#main">
        Skip to content
      </a>
      <header className="topbar">
        <span className="brand">FlowSync</span>
        <nav aria-label="Main" className="nav">
          {NAV.map(([to, label]) => (
            <NavLink key={to} to={to} end={to === "/"}>
              {label}
            </NavLink>
          ))}
        </nav>
        <div className="topbar-right">
          <LinkIndicator />
          <button
            type="button"
            className="ghost"
            onClick={() => setTheme(theme === "dark" ? "light" : "dark")}
            aria-label={`Switch to ${theme === "dark" ? "light" : "dark"} theme`}
          >
            {theme === "dark" ? "Light" : "Dark"} theme
          </button>
          <button type="button" className="ghost" onClick={() => signOut(null)}>
            Sign out
          </button>
        </div>
      </header>
      <main id="main" className="content" tabIndex={-1}>
        {children}
      </main>
    </div>
  );
}
