// Entry point: sign-in (dev token or pasted token), layout, client-side routes.
import { render } from "preact";
import { useEffect, useRef, useState } from "preact/hooks";
import { api, devToken, getToken, onUnauthorized, setToken, tokenClaims, type SearchResult } from "./api";
import { CatalogPage, hitPath, LineagePage, SearchPage, TablePage } from "./catalog";
import { BackfillPage, BackfillsPage, SchedulesPage, SensorsPage } from "./automation";
import { AssetsPage, RunPage, RunsPage } from "./flow";
import { ExternalRunPage, ExternalRunsPage } from "./openlineage";
import { here, Link, navigate, safeNext, useLocation } from "./router";
import { SqlPage } from "./sql";
import { useTitle } from "./util";
import "./style.css";

function SignIn(props: { onDone: () => void; reason: string | null }) {
  const [value, setValue] = useState("");
  const [error, setError] = useState<string | null>(props.reason);
  // Under `arco dev` the server hands out a token: offer it instead of a dead end.
  const [dev, setDev] = useState<string | null>(null);
  useTitle("Sign in");
  useEffect(() => {
    void devToken().then(setDev);
  }, []);
  const submit = async (e: Event) => {
    e.preventDefault();
    const token = value.trim().replace(/^Bearer\s+/i, "");
    if (!token) {
      setError("Paste a token first.");
      return;
    }
    setToken(token);
    try {
      await api("/api/v1/namespaces?page_size=1");
      props.onDone();
    } catch (err) {
      setToken(null);
      setError(`The server refused this token: ${err instanceof Error ? err.message : String(err)}`);
    }
  };
  return (
    <main class="signin">
      <h1>Sign in to Arco</h1>
      {dev && (
        <div class="notice">
          <p>
            This server runs <code>arco dev</code> on this machine.
          </p>
          <button
            type="button"
            data-testid="dev-sign-in"
            onClick={() => {
              setToken(dev);
              props.onDone();
            }}
          >
            Continue as the local developer
          </button>
        </div>
      )}
      <p>
        Paste an API token. Mint one with <code>arco token --role reader</code> (with the server's <code>ARCO_JWT_SECRET</code>), or run <code>arco dev</code> on this machine to be
        signed in automatically.
      </p>
      <form onSubmit={submit}>
        <label for="token-input">API token</label>
        <textarea id="token-input" data-testid="token-input" rows={4} value={value} placeholder="eyJhbGciOi…" onInput={(e) => setValue((e.target as HTMLTextAreaElement).value)} />
        <button type="submit" data-testid="sign-in">
          Sign in
        </button>
      </form>
      {error && (
        <div class="error" role="alert" data-testid="signin-error">
          {error}
        </div>
      )}
      <p class="muted">The token is kept in this tab's session storage only.</p>
    </main>
  );
}

/** The header's search box: Enter searches, typing suggests (a combobox, WAI-ARIA 1.2). */
function SearchBox(props: { initial: string }) {
  const [q, setQ] = useState(props.initial);
  const [hits, setHits] = useState<SearchResult["hits"]>([]);
  const [open, setOpen] = useState(false);
  const [active, setActive] = useState(-1);
  const seq = useRef(0);
  useEffect(() => {
    const text = q.trim();
    if (text.length < 2) {
      setHits([]);
      return;
    }
    const mine = ++seq.current;
    const id = setTimeout(() => {
      api<SearchResult>(`/api/v1/search?q=${encodeURIComponent(text)}&limit=8`).then(
        (r) => mine === seq.current && (setHits(r.hits), setActive(-1)),
        () => mine === seq.current && setHits([]),
      );
    }, 120);
    return () => clearTimeout(id);
  }, [q]);
  const shown = open && hits.length > 0;
  const go = (to: string) => {
    setOpen(false);
    navigate(to);
  };
  return (
    <form
      class="search"
      role="search"
      onSubmit={(e) => {
        e.preventDefault();
        if (shown && active >= 0) go(hitPath(hits[active]));
        else if (q.trim()) go(`/search?q=${encodeURIComponent(q.trim())}`);
      }}
    >
      <input
        type="search"
        data-testid="search-input"
        aria-label="Search tables, columns and namespaces"
        placeholder="Search tables, columns, namespaces"
        role="combobox"
        aria-autocomplete="list"
        aria-expanded={shown}
        aria-controls="search-suggestions"
        aria-activedescendant={shown && active >= 0 ? `suggestion-${active}` : undefined}
        autocomplete="off"
        value={q}
        onInput={(e) => {
          setQ((e.target as HTMLInputElement).value);
          setOpen(true);
        }}
        onFocus={() => setOpen(true)}
        onBlur={() => setTimeout(() => setOpen(false), 150)}
        onKeyDown={(e) => {
          if (e.key === "Escape") setOpen(false);
          else if (e.key === "ArrowDown" && hits.length) {
            e.preventDefault();
            setOpen(true);
            setActive((a) => (a + 1) % hits.length);
          } else if (e.key === "ArrowUp" && hits.length) {
            e.preventDefault();
            setActive((a) => (a <= 0 ? hits.length - 1 : a - 1));
          }
        }}
      />
      <ul id="search-suggestions" role="listbox" aria-label="Suggestions" class="suggestions" data-testid="suggestions" hidden={!shown}>
        {shown &&
          hits.map((h, i) => (
            <li
              key={h.kind + h.qualified_name}
              id={`suggestion-${i}`}
              role="option"
              aria-selected={i === active}
              class={i === active ? "active" : ""}
              onMouseDown={(e) => {
                e.preventDefault();
                go(hitPath(h));
              }}
            >
              <span class={`kind kind-${h.kind}`}>{h.kind}</span> {h.qualified_name}
            </li>
          ))}
      </ul>
    </form>
  );
}

function Header() {
  const { path, query } = useLocation();
  const claims = tokenClaims();
  const nav = (href: string, label: string, section = href) => {
    const current = path === href || (href !== "/" && path.startsWith(section));
    return (
      <a
        href={href}
        class={current ? "active" : ""}
        aria-current={current ? "page" : undefined}
        onClick={(e) => {
          if (e.ctrlKey || e.metaKey || e.shiftKey || e.button !== 0) return;
          e.preventDefault();
          navigate(href);
        }}
      >
        {label}
      </a>
    );
  };
  return (
    <header class="top">
      <Link href="/" class="brand">
        Arco
      </Link>
      <nav aria-label="Main">
        {nav("/catalog", "Catalog")}
        {nav("/sql", "SQL")}
        {nav("/assets", "Assets")}
        {nav("/runs", "Runs")}
        {nav("/automation/schedules", "Automation", "/automation")}
      </nav>
      <SearchBox key={path === "/search" ? "s" : "x"} initial={path === "/search" ? (query.get("q") ?? "") : ""} />
      <span class="who" title="token scope">
        {claims ? `${String(claims.tenant)}/${String(claims.workspace)}` : ""}
      </span>
      <button
        class="secondary"
        data-testid="sign-out"
        onClick={() => {
          setToken(null);
          location.assign(`/signin?next=${encodeURIComponent(here())}`);
        }}
      >
        Sign out
      </button>
    </header>
  );
}

function NotFound(props: { path: string }) {
  useTitle("Not found");
  return (
    <div class="page">
      <h1>Not found</h1>
      <p>
        No page at <code>{props.path}</code>. <Link href="/">Back to the catalog</Link>.
      </p>
    </div>
  );
}

function Routes() {
  const { path, query } = useLocation();
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  let page;
  if (parts.length === 0 || (parts[0] === "catalog" && parts.length <= 2)) page = <CatalogPage namespace={parts[1] ?? null} />;
  else if (parts[0] === "tables" && parts.length === 3) page = <TablePage namespace={parts[1]} name={parts[2]} column={query.get("column")} />;
  else if (parts[0] === "lineage" && parts.length === 2) page = <LineagePage name={parts[1]} />;
  else if (parts[0] === "search") page = <SearchPage q={query.get("q") ?? ""} />;
  else if (parts[0] === "sql") page = <SqlPage q={query.get("q")} autorun={query.get("run") === "1"} />;
  else if (parts[0] === "assets" && parts.length === 1) page = <AssetsPage selected={query.get("asset")} />;
  else if (parts[0] === "runs" && parts.length === 1) page = query.get("source") === "openlineage" ? <ExternalRunsPage /> : <RunsPage />;
  else if (parts[0] === "runs" && parts[1] === "external" && parts.length === 3) page = <ExternalRunPage id={parts[2]} />;
  else if (parts[0] === "runs" && parts.length === 2) page = <RunPage id={parts[1]} />;
  else if (parts[0] === "automation" && parts.length === 1) page = <SchedulesPage />;
  else if (parts[0] === "automation" && parts[1] === "schedules" && parts.length === 2) page = <SchedulesPage />;
  else if (parts[0] === "automation" && parts[1] === "sensors" && parts.length === 2) page = <SensorsPage />;
  else if (parts[0] === "automation" && parts[1] === "backfills" && parts.length === 2) page = <BackfillsPage />;
  else if (parts[0] === "automation" && parts[1] === "backfills" && parts.length === 3) page = <BackfillPage id={parts[2]} />;
  else page = <NotFound path={path} />;
  // The asset page keeps its graph (and scroll position) when only the selection changes.
  const key = parts[0] === "assets" ? path : path + location.search;
  return (
    <>
      <a class="skip" href="#main">
        Skip to content
      </a>
      <Header />
      <main id="main" key={key}>
        {page}
      </main>
    </>
  );
}

function App() {
  // "/signin" (where "Sign out" lands) never signs in automatically, even under arco dev.
  const initial = getToken() ? "ready" : location.pathname === "/signin" ? "signin" : "checking";
  const [state, setState] = useState<"checking" | "signin" | "ready">(initial);
  const [reason, setReason] = useState<string | null>(null);
  useEffect(() => {
    onUnauthorized(() => {
      setToken(null);
      setReason("Your token was refused (expired or invalid). Sign in again.");
      setState("signin");
    });
    if (state === "checking")
      void devToken().then((token) => {
        if (token) setToken(token);
        setState(token ? "ready" : "signin");
      });
  }, []);
  if (state === "checking") return <p class="boot">Signing in…</p>;
  if (state === "signin")
    return (
      <SignIn
        reason={reason}
        onDone={() => {
          setReason(null);
          // Back to where the user was: "Sign out" put it in ?next=.
          if (location.pathname === "/signin") navigate(safeNext(new URLSearchParams(location.search).get("next")), true);
          setState("ready");
        }}
      />
    );
  if (location.pathname === "/signin") history.replaceState(null, "", safeNext(new URLSearchParams(location.search).get("next")));
  return <Routes />;
}

const root = document.getElementById("app")!;
// The static "Loading Arco…" placeholder is not Preact's: render would keep it below the app.
root.replaceChildren();
render(<App />, root);
