import * as api from '../api/client';
import type { Me } from '../api/types';
import { ErrorBox, TextField, useForm } from '../components/ui';

export function LoginPage({ onLogin }: { onLogin: (me: Me) => void }) {
  const f = useForm({ login: '', password: '' });
  const onSubmit = (e: React.FormEvent) => {
    e.preventDefault();
    void f.submit(
      (v) => ({ ...(!v.login.trim() && { login: 'enter your login' }), ...(!v.password && { password: 'enter your password' }) }),
      async (v) => onLogin(await api.auth.login(v.login.trim(), v.password)),
    );
  };
  return (
    <div className="login-screen">
      <form className="login-card" onSubmit={onSubmit} noValidate>
        <h1>ccard console</h1>
        <p className="muted">Sign in to manage cards, rates and calls.</p>
        <TextField label="Login" name="username" autoComplete="username" value={f.values.login} error={f.errors.login} onChange={(e) => f.set('login', e.target.value)} />
        <TextField
          label="Password"
          type="password"
          autoComplete="current-password"
          value={f.values.password}
          error={f.errors.password}
          onChange={(e) => f.set('password', e.target.value)}
        />
        <ErrorBox error={f.formError} />
        <button type="submit" className="primary" disabled={f.busy}>
          {f.busy ? 'Signing in…' : 'Sign in'}
        </button>
      </form>
    </div>
  );
}
