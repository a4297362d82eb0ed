import { render } from 'preact';
import { useCallback, useEffect, useState } from 'preact/hooks';
import { api, onUnauthorized, session } from './api.js';
import { ErrorBox, Loading } from './components/common.jsx';
import { Access } from './pages/Access.jsx';
import { Builder } from './pages/Builder.jsx';
import { Dashboard } from './pages/Dashboard.jsx';
import { Governance } from './pages/Governance.jsx';
import { Marketplace } from './pages/Marketplace.jsx';
import { Product } from './pages/Product.jsx';
import { Query } from './pages/Query.jsx';
import { SignIn } from './pages/SignIn.jsx';
import { useRoute } from './router.js';
import './styles.css';

function NavLink({ to, active, testid, children, badge }) {
  return (
    <a href={`#${to}`} class={`nav-link${active ? ' active' : ''}`} aria-current={active ? 'page' : undefined} data-testid={testid}>
      {children}
      {badge > 0 && (
        <span class="nav-badge" data-testid={`${testid}-badge`} aria-label={`${badge} to decide`}>
          {badge}
        </span>
      )}
    </a>
  );
}

function Layout({ me, route, onSignOut, inboxCount, children }) {
  const top = route.parts[0] || '';
  return (
    <div class="app">
      <a
        class="skip"
        href="#main"
        onClick={(e) => {
          e.preventDefault();
          document.getElementById('main')?.focus();
        }}
        data-testid="skip-to-content"
      >
        Skip to content
      </a>
      <header class="topbar">
        <a class="brand" href="#/" data-testid="brand">
          <img src="./favicon.svg" alt="" width="26" height="26" />
          <span>Canopy</span>
        </a>
        <nav aria-label="Main">
          <NavLink to="/" active={top === '' || top === 'products' || top === 'dashboards'} testid="nav-marketplace">
            Marketplace
          </NavLink>
          <NavLink to="/access" active={top === 'access'} testid="nav-access" badge={inboxCount}>
            Access
          </NavLink>
          <NavLink to="/query" active={top === 'query'} testid="nav-query">
            Query
          </NavLink>
          <NavLink to="/builder" active={top === 'builder'} testid="nav-builder">
            Builder
          </NavLink>
          {me.admin && (
            <NavLink to="/governance" active={top === 'governance'} testid="nav-governance">
              Governance
            </NavLink>
          )}
        </nav>
        <div class="whoami">
          <span class="avatar" aria-hidden="true">
            {(me.name || '?').slice(0, 1).toUpperCase()}
          </span>
          <span class="who" data-testid="whoami" data-principal={me.principal} title={[me.principal, ...(me.groups || []).map((g) => `group:${g}`)].join('\n')}>
            <strong>{me.name}</strong>
            <span class="small muted">
              {me.admin ? 'admin' : (me.groups || []).join(', ') || 'no groups'}
            </span>
          </span>
          <button type="button" class="btn btn-small" onClick={onSignOut} data-testid="sign-out">
            Sign out
          </button>
        </div>
      </header>
      <main id="main" tabIndex={-1}>
        {children}
      </main>
    </div>
  );
}

function Routes({ route, me, refreshInbox }) {
  const [top, a, b] = route.parts;
  if (!top) return <Marketplace />;
  if (top === 'products' && a && b) return <Product key={`${a}.${b}`} domain={a} name={b} me={me} query={route.query} />;
  if (top === 'access') return <Access me={me} query={route.query} onChanged={refreshInbox} />;
  if (top === 'dashboards' && a && b) return <Dashboard key={`${a}.${b}`} domain={a} name={b} me={me} />;
  if (top === 'query') return <Query query={route.query} me={me} />;
  if (top === 'builder' && a && b) return <Builder key={`${a}.${b}`} me={me} domain={a} name={b} />;
  if (top === 'builder' && !a) return <Builder key="new" me={me} />;
  if (top === 'governance') return <Governance me={me} />;
  return (
    <div class="page">
      <h1>Not found</h1>
      <p>
        There is no page at <code>{route.path}</code>. <a href="#/" data-testid="notfound-home">Go to the marketplace.</a>
      </p>
    </div>
  );
}

function App() {
  const route = useRoute();
  const [token, setToken] = useState(session.token());
  const [me, setMe] = useState(null);
  const [meError, setMeError] = useState(null);
  const [message, setMessage] = useState('');
  const [inboxCount, setInboxCount] = useState(0);
  const [meTry, setMeTry] = useState(0);

  const signOut = useCallback((msg) => {
    session.clear();
    setToken(null);
    setMe(null);
    setInboxCount(0);
    setMessage(msg);
  }, []);

  useEffect(() => {
    onUnauthorized(() => signOut('Your token is no longer accepted (it expired or was revoked). Sign in again with a valid token.'));
  }, [signOut]);

  useEffect(() => {
    if (!token || me) return;
    setMeError(null);
    api('/api/v1/me').then(setMe, (e) => {
      if (e.status !== 401) setMeError(e);
    });
  }, [token, me, meTry]);

  const refreshInbox = useCallback(() => {
    api('/api/v1/access-requests').then(
      (rs) => setInboxCount((rs || []).filter((r) => r.can_decide && r.status === 'pending').length),
      () => {},
    );
  }, []);
  useEffect(() => {
    if (me) refreshInbox();
  }, [me, route.path, refreshInbox]);

  useEffect(() => {
    const page = route.parts[0] ? route.parts.join(' / ') : 'Marketplace';
    document.title = me ? `${page} · Canopy` : 'Sign in · Canopy';
  }, [route.path, me]);

  if (!token) {
    return (
      <SignIn
        message={message}
        onSignedIn={(t, who) => {
          session.save(t);
          setMessage('');
          setMe(who);
          setToken(t);
        }}
      />
    );
  }
  if (!me) {
    return (
      <main class="signin" id="main">
        {meError ? (
          <ErrorBox error={meError} title="Could not load your profile." testid="me-error">
            <div class="actions">
              <button type="button" class="btn" onClick={() => {
                  setMeError(null);
                  setMeTry((n) => n + 1);
                }} data-testid="retry-me">
                Retry
              </button>
              <button type="button" class="btn" onClick={() => signOut('')} data-testid="sign-out">
                Sign out
              </button>
            </div>
          </ErrorBox>
        ) : (
          <Loading label="Signing in…" />
        )}
      </main>
    );
  }
  return (
    <Layout
      me={me}
      route={route}
      inboxCount={inboxCount}
      onSignOut={() => {
        signOut('You are signed out.');
        location.hash = '#/';
      }}
    >
      <Routes route={route} me={me} refreshInbox={refreshInbox} />
    </Layout>
  );
}

render(<App />, document.getElementById('app'));
