import { useEffect, useState } from 'preact/hooks';
import { api, ApiError } from '../api.js';

export function SignIn({ message, onSignedIn }) {
  const [token, setToken] = useState('');
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const [version, setVersion] = useState(null);

  useEffect(() => {
    api('/api/v1/health', { token: '' })
      .then((h) => setVersion(h?.version || ''))
      .catch(() => setVersion(null));
  }, []);

  const submit = async (e) => {
    e.preventDefault();
    const t = token.trim();
    if (!t) {
      setError('Paste the token that `canopy token create YOUR-NAME` printed.');
      return;
    }
    setBusy(true);
    setError(null);
    try {
      const me = await api('/api/v1/me', { token: t });
      onSignedIn(t, me);
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) {
        setError('This token was not accepted. Check that you copied all of it, or ask for a new one with `canopy token create YOUR-NAME`.');
      } else {
        setError(err.message);
      }
    } finally {
      setBusy(false);
    }
  };

  return (
    <main class="signin" id="main">
      <form class="card signin-card" onSubmit={submit} data-testid="signin-form">
        <div class="brand brand-large">
          <img src="./favicon.svg" alt="" width="36" height="36" />
          <span>Canopy</span>
        </div>
        <h1>Sign in</h1>
        <p class="muted">
          Browse the data products of your organisation, request access and query them — governed, audited, masked where
          needed.
        </p>
        {message && (
          <div class="alert alert-info" role="status" data-testid="signin-message">
            {message}
          </div>
        )}
        <label class="field" for="token">
          <span>API token</span>
          <input
            id="token"
            type="password"
            autocomplete="off"
            spellcheck={false}
            value={token}
            onInput={(e) => setToken(e.currentTarget.value)}
            placeholder="Paste your token"
            data-testid="token-input"
            aria-describedby="token-help"
            autoFocus
          />
        </label>
        <p id="token-help" class="small muted">
          Ask a platform admin, or run <code>canopy token create YOUR-NAME</code>. The token is kept only in this browser tab
          and forgotten when you close it.
        </p>
        {error && (
          <div class="alert alert-error" role="alert" data-testid="signin-error">
            {error}
          </div>
        )}
        <button type="submit" class="btn btn-primary btn-block" disabled={busy} data-testid="signin-submit">
          {busy ? 'Checking…' : 'Sign in'}
        </button>
        <p class="small muted center" data-testid="server-version">
          {version === null ? 'Server not reachable yet.' : `Canopy server ${version}`}
        </p>
      </form>
    </main>
  );
}
