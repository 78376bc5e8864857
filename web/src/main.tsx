// Entry point: sign-in (dev token or pasted token), layout, client-side routes.
import { render } from "preact";
import { useEffect, useState } from "preact/hooks";
import { api, getToken, onUnauthorized, setToken, tokenClaims, tryDevToken } from "./api";
import { CatalogPage, SearchPage, TablePage } from "./catalog";
import { AssetsPage, RunPage, RunsPage } from "./flow";
import { Link, navigate, useLocation } from "./router";
import { SqlPage } from "./sql";
import "./style.css";

function SignIn(props: { onDone: () => void; reason: string | null }) {
  const [value, setValue] = useState("");
  const [error, setError] = useState<string | null>(props.reason);
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
    <div class="signin">
      <h1>Sign in to Arco</h1>
      <p>
        Paste an API token. Mint one with <code>arco token --role reader</code> (with the server's <code>ARCO_JWT_SECRET</code>), or run <code>arco dev</code> on this machine to be
        signed in automatically.
      </p>
      <form onSubmit={submit}>
        <textarea data-testid="token-input" rows={4} value={value} placeholder="eyJhbGciOi…" onInput={(e) => setValue((e.target as HTMLTextAreaElement).value)} />
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
    </div>
  );
}

function Header() {
  const { path, query } = useLocation();
  const [q, setQ] = useState(path === "/search" ? (query.get("q") ?? "") : "");
  const claims = tokenClaims();
  const nav = (href: string, label: string) => (
    <Link href={href} class={path === href || (href !== "/" && path.startsWith(href)) ? "active" : ""}>
      {label}
    </Link>
  );
  return (
    <header class="top">
      <Link href="/" class="brand">
        Arco
      </Link>
      <nav>
        {nav("/catalog", "Catalog")}
        {nav("/sql", "SQL")}
        {nav("/assets", "Assets")}
        {nav("/runs", "Runs")}
      </nav>
      <form
        class="search"
        role="search"
        onSubmit={(e) => {
          e.preventDefault();
          if (q.trim()) navigate(`/search?q=${encodeURIComponent(q.trim())}`);
        }}
      >
        <input type="search" data-testid="search-input" placeholder="Search tables, columns, namespaces" value={q} onInput={(e) => setQ((e.target as HTMLInputElement).value)} />
      </form>
      <span class="who" title="token scope">
        {claims ? `${String(claims.tenant)}/${String(claims.workspace)}` : ""}
      </span>
      <button
        class="secondary"
        data-testid="sign-out"
        onClick={() => {
          setToken(null);
          location.assign("/signin");
        }}
      >
        Sign out
      </button>
    </header>
  );
}

function Routes() {
  const { path, query } = useLocation();
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  let page;
  if (parts.length === 0 || (parts[0] === "catalog" && parts.length <= 2)) page = <CatalogPage namespace={parts[1] ?? null} />;
  else if (parts[0] === "tables" && parts.length === 3) page = <TablePage namespace={parts[1]} name={parts[2]} />;
  else if (parts[0] === "search") page = <SearchPage q={query.get("q") ?? ""} />;
  else if (parts[0] === "sql") page = <SqlPage q={query.get("q")} autorun={query.get("run") === "1"} />;
  else if (parts[0] === "assets") page = <AssetsPage />;
  else if (parts[0] === "runs" && parts.length === 1) page = <RunsPage />;
  else if (parts[0] === "runs" && parts.length === 2) page = <RunPage id={parts[1]} />;
  else
    page = (
      <div class="page">
        <h1>Not found</h1>
        <p>
          No page at <code>{path}</code>. <Link href="/">Back to the catalog</Link>.
        </p>
      </div>
    );
  return (
    <>
      <Header />
      <main key={path + location.search}>{page}</main>
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
    if (state === "checking") void tryDevToken().then((ok) => setState(ok ? "ready" : "signin"));
  }, []);
  if (state === "checking") return <p class="boot">Signing in…</p>;
  if (state === "signin")
    return (
      <SignIn
        reason={reason}
        onDone={() => {
          setReason(null);
          if (location.pathname === "/signin") navigate("/", true);
          setState("ready");
        }}
      />
    );
  if (location.pathname === "/signin") history.replaceState(null, "", "/");
  return <Routes />;
}

const root = document.getElementById("app")!;
// The static "Loading Arco…" placeholder is not Preact's: render would keep it below the app.
root.replaceChildren();
render(<App />, root);
