// A tiny history-API router: the server answers index.html for every client route.
import type { ComponentChildren } from "preact";
import { useEffect, useState } from "preact/hooks";

const listeners = new Set<() => void>();

export function navigate(to: string, replace = false, scroll = true): void {
  if (replace) history.replaceState(null, "", to);
  else history.pushState(null, "", to);
  listeners.forEach((l) => l());
  if (scroll) window.scrollTo(0, 0);
}

window.addEventListener("popstate", () => listeners.forEach((l) => l()));

/** The current location (re-renders on navigation). */
export function useLocation(): { path: string; query: URLSearchParams } {
  const [, setTick] = useState(0);
  useEffect(() => {
    const l = () => setTick((t) => t + 1);
    listeners.add(l);
    return () => void listeners.delete(l);
  }, []);
  return { path: location.pathname, query: new URLSearchParams(location.search) };
}

export function Link(props: { href: string; class?: string; children: ComponentChildren; title?: string; testid?: string }) {
  return (
    <a
      href={props.href}
      class={props.class}
      title={props.title}
      data-testid={props.testid}
      onClick={(e) => {
        if (e.ctrlKey || e.metaKey || e.shiftKey || e.button !== 0) return;
        e.preventDefault();
        navigate(props.href);
      }}
    >
      {props.children}
    </a>
  );
}

const enc = encodeURIComponent;
export const tablePath = (ns: string, name: string, column?: string | null) =>
  `/tables/${enc(ns)}/${enc(name)}${column ? "?column=" + enc(column) : ""}`;
export const namespacePath = (ns: string) => `/catalog/${enc(ns)}`;
/** The page of any lineage node, whether or not the catalog has a table of that name. */
export const lineagePath = (name: string) => `/lineage/${enc(name)}`;
/** The asset graph with one asset selected (its details panel open). */
export const assetPath = (key: string) => `/assets?asset=${enc(key)}`;

/** Where the app is now, to come back to after signing in again. */
export const here = () => location.pathname + location.search;

/** A same-origin path to return to (never another site: `//evil.example` is refused). */
export function safeNext(next: string | null): string {
  return next && next.startsWith("/") && !next.startsWith("//") && !next.startsWith("/signin") ? next : "/";
}
