// Development-only mock of the Canopy REST API (/api/v1), as a Vite dev-server middleware.
//
// It is never part of dist: vite.config.js loads it only for `vite` (serve) when CANOPY_MOCK_MESH
// names a built mesh folder. It answers from the real `canopy` CLI run in that folder, so data,
// masks, denials and the access workflow behave like the real thing. The bearer token is simply the
// user's name (e.g. `alice`). What the CLI cannot tell (lineage, grants, governance) comes from the
// mesh's YAML files. This is a stand-in for `canopy serve`, not a specification of it.
import { execFile } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parse } from 'yaml';

function run(bin, mesh, args) {
  return new Promise((res) => {
    execFile(bin, ['--mesh', mesh, ...args], { cwd: mesh, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      res({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
    });
  });
}

class HttpError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

const cliError = (r) => {
  const msg = (r.stderr || r.stdout).replace(/^error: /, '').trim();
  const status = r.code === 3 ? 403 : r.code === 2 ? 400 : /not found|no product|unknown/i.test(msg) ? 404 : 400;
  return new HttpError(status, { 403: 'permission_denied', 404: 'not_found' }[status] || 'invalid_input', msg);
};

export function canopyMock({ mesh, bin }) {
  const root = resolve(mesh);
  const canopy = bin || resolve(process.cwd(), '../build-dev/canopy');
  const cli = async (args) => {
    const r = await run(canopy, root, args);
    if (r.code !== 0) throw cliError(r);
    return r.stdout;
  };
  const cliJson = async (args) => JSON.parse(await cli([...args, '--format', 'json']));

  const meshYaml = () => parse(readFileSync(join(root, 'mesh.yaml'), 'utf8'));
  const domains = () =>
    readdirSync(join(root, 'domains')).map((d) => {
      const dy = parse(readFileSync(join(root, 'domains', d, 'domain.yaml'), 'utf8'));
      const products = readdirSync(join(root, 'domains', d, 'products'))
        .filter((f) => f.endsWith('.yaml'))
        .map((f) => parse(readFileSync(join(root, 'domains', d, 'products', f), 'utf8')));
      return { ...dy, name: dy.name || d, productSpecs: products };
    });
  const runtimeGrants = []; // from approvals in this mock session

  function principal(token) {
    const m = meshYaml();
    const u = (m.principals?.users || []).find((x) => x.name === token);
    if (!u) return null;
    const adminGroups = new Set((m.principals?.groups || []).filter((g) => g.admin).map((g) => g.name));
    const groups = u.groups || [];
    const doms = domains()
      .filter((d) => (d.owners || []).includes(u.name) || (d.members || []).some((x) => x === u.name || x === `user:${u.name}` || groups.some((g) => x === `group:${g}`)))
      .map((d) => d.name);
    return {
      principal: `user:${u.name}`,
      name: u.name,
      groups,
      admin: groups.some((g) => adminGroups.has(g)),
      domains: doms,
      clearances: u.clearances || [],
      attributes: u.attributes || {},
    };
  }

  const canReadCache = new Map();
  async function canRead(me, show) {
    const port = show.outputs?.[0]?.sql_name;
    if (!port) return false;
    const key = `${me.name}|${port}`;
    if (!canReadCache.has(key)) {
      const r = await run(canopy, root, ['query', '--as', me.name, '--format', 'json', `select 1 from ${port} limit 0`]);
      canReadCache.set(key, r.code === 0 ? { ok: true } : { ok: false, reason: r.stderr.split('\n')[0].replace(/^error: /, '') });
    }
    return canReadCache.get(key);
  }

  const showCache = new Map();
  async function show(key) {
    if (!showCache.has(key)) showCache.set(key, await cliJson(['show', key]));
    return showCache.get(key);
  }

  function freshness(s) {
    const freq = s.outputs?.flatMap((o) => o.sla || []).find((x) => x.property === 'frequency');
    const frequency = freq ? `${freq.value} ${freq.unit}` : null;
    if (!s.published_at) return { frequency, age_seconds: null, status: 'never' };
    const age = Math.round((Date.now() - Date.parse(s.published_at)) / 1000);
    const unit = { d: 86400, h: 3600, m: 60, w: 604800, y: 31536000 }[freq?.unit] || 86400;
    const limit = freq ? Number(freq.value) * unit : Infinity;
    return { frequency, age_seconds: age, status: age > limit ? 'stale' : 'fresh' };
  }

  async function summary(me, s) {
    const q = s.quality || [];
    const cr = await canRead(me, s);
    return {
      domain: s.domain,
      name: s.name,
      version: s.version,
      status: s.status,
      type: s.type,
      owner: s.owner,
      visibility: s.visibility,
      purpose: s.description?.purpose || '',
      tags: s.tags || [],
      build_id: s.build_id ?? null,
      published_at: s.published_at ?? null,
      freshness: freshness(s),
      quality: { passed: q.filter((x) => x.passed).length, total: q.length },
      can_read: cr.ok,
      _reason: cr.reason,
    };
  }

  async function detail(me, key) {
    const s = await show(key);
    const sum = await summary(me, s);
    const masked = [];
    if (sum.can_read) {
      for (const o of s.outputs || []) {
        try {
          const r = await cliJson(['query', '--as', me.name, `select * from ${o.sql_name} limit 0`]);
          for (const c of r.masked || []) masked.push(`${o.name}.${c}`);
        } catch {
          /* port not readable */
        }
      }
    }
    const history = (s.history || []).map((h) => {
      const m = /^(\S+) \((\S+), (\S+)\)$/.exec(h);
      return m ? { version: m[1], build_id: m[2], published_at: m[3] } : { version: h, build_id: null, published_at: null };
    });
    const { _reason, ...rest } = sum;
    return {
      ...rest,
      description: s.description,
      outputs: s.outputs,
      quality: s.quality || [],
      history,
      access: {
        can_read: sum.can_read,
        reason: sum.can_read ? `${me.principal} may read ${key}` : _reason,
        masked,
        row_filter: false,
      },
    };
  }

  function lineage(key) {
    const ds = domains();
    const specs = ds.flatMap((d) => d.productSpecs.map((p) => ({ domain: d.name, ...p })));
    const portOwner = new Map();
    for (const p of specs) for (const o of p.outputs || []) portOwner.set(`${p.domain}.${o.name}`, `${p.domain}.${p.name}`);
    const nodes = new Map();
    const edges = new Set();
    const addProduct = (pk) => nodes.set(`product:${pk}`, { id: `product:${pk}`, kind: 'product', domain: pk.split('.')[0], label: pk });
    const addPort = (port) => nodes.set(`port:${port}`, { id: `port:${port}`, kind: 'port', domain: port.split('.')[0], label: port });
    const visitUp = (pk, seen = new Set()) => {
      if (seen.has(pk)) return;
      seen.add(pk);
      const p = specs.find((x) => `${x.domain}.${x.name}` === pk);
      if (!p) return;
      addProduct(pk);
      for (const o of p.outputs || []) {
        addPort(`${p.domain}.${o.name}`);
        edges.add(`product:${pk}|port:${p.domain}.${o.name}`);
      }
      for (const i of p.inputs || []) {
        if (i.file) {
          const id = `file:${p.domain}/${i.file}`;
          nodes.set(id, { id, kind: 'file', domain: p.domain, label: i.file });
          edges.add(`${id}|product:${pk}`);
        } else if (i.product) {
          addPort(i.product);
          edges.add(`port:${i.product}|product:${pk}`);
          const up = portOwner.get(i.product);
          if (up) visitUp(up, seen);
        }
      }
    };
    const visitDown = (pk, seen = new Set()) => {
      if (seen.has(pk)) return;
      seen.add(pk);
      const p = specs.find((x) => `${x.domain}.${x.name}` === pk);
      if (!p) return;
      addProduct(pk);
      for (const o of p.outputs || []) {
        const port = `${p.domain}.${o.name}`;
        addPort(port);
        edges.add(`product:${pk}|port:${port}`);
        for (const c of specs) {
          if ((c.inputs || []).some((i) => i.product === port)) {
            const ck = `${c.domain}.${c.name}`;
            addProduct(ck);
            edges.add(`port:${port}|product:${ck}`);
            visitDown(ck, seen);
          }
        }
      }
    };
    visitUp(key);
    visitDown(key);
    if (!nodes.size) throw new HttpError(404, 'not_found', `no product ${key}`);
    return {
      nodes: [...nodes.values()],
      edges: [...edges].map((e) => {
        const [from, to] = e.split('|');
        return { from, to };
      }),
    };
  }

  function grants() {
    const out = [];
    for (const d of domains())
      for (const p of d.productSpecs)
        for (const g of p.access?.grants || [])
          out.push({ id: out.length + 1, product: `${d.name}.${p.name}`, grantee: g, granted_by: null, granted_at: null });
    return [...out, ...runtimeGrants];
  }

  async function requests(me) {
    const rs = await cliJson(['access', 'list']);
    const owned = new Set(domains().filter((d) => (d.owners || []).includes(me.name)).map((d) => d.name));
    return rs
      .map((r) => ({
        ...r,
        decided_by: r.decided_by || null,
        decided_at: r.decided_at || null,
        can_decide: r.status === 'pending' && (me.admin || owned.has(r.product.split('.')[0])),
      }))
      .filter((r) => me.admin || r.requester === me.principal || owned.has(r.product.split('.')[0]));
  }

  async function handle(req, me, url, body) {
    const p = url.pathname.replace(/^\/api\/v1/, '');
    const m = (re) => re.exec(p);
    let g;
    if (req.method === 'GET' && p === '/me') return me;
    if (req.method === 'GET' && p === '/products') {
      const list = await cliJson(['products']);
      const out = [];
      for (const x of list) {
        const { _reason, ...s } = await summary(me, await show(`${x.domain}.${x.name}`));
        out.push(s);
      }
      return out;
    }
    if (req.method === 'GET' && (g = m(/^\/products\/([^/]+)\/([^/]+)$/))) return detail(me, `${g[1]}.${g[2]}`);
    if (req.method === 'GET' && (g = m(/^\/products\/([^/]+)\/([^/]+)\/sample$/))) {
      const s = await show(`${g[1]}.${g[2]}`);
      const port = (s.outputs || []).find((o) => o.name === url.searchParams.get('port')) || s.outputs?.[0];
      if (!port) throw new HttpError(404, 'not_found', 'no such port');
      const limit = Math.min(Number(url.searchParams.get('limit')) || 20, 100);
      return cliJson(['query', '--as', me.name, `select * from ${port.sql_name} limit ${limit}`]);
    }
    if (req.method === 'GET' && p === '/search') return cliJson(['search', url.searchParams.get('q') || '']);
    if (req.method === 'POST' && p === '/query') {
      if (!body?.sql) throw new HttpError(400, 'usage', 'sql is required');
      const r = await run(canopy, root, ['query', '--as', me.name, '--format', 'json', body.sql]);
      if (r.code !== 0) throw cliError(r);
      const res = JSON.parse(r.stdout);
      const limit = Number(body.limit) || 1000;
      if (res.rows.length > limit) return { ...res, rows: res.rows.slice(0, limit), truncated: true };
      return res;
    }
    if (req.method === 'GET' && (g = m(/^\/lineage\/([^/]+)\/([^/]+)$/))) return lineage(`${g[1]}.${g[2]}`);
    if (req.method === 'GET' && p === '/access-requests') return requests(me);
    if (req.method === 'POST' && p === '/access-requests') {
      await cli(['access', 'request', body?.product || '', '--as', me.name, '--purpose', body?.purpose || '']);
      const rs = await requests(me);
      return { status: 201, body: rs.filter((r) => r.product === body.product && r.requester === me.principal).sort((a, b) => b.id - a.id)[0] };
    }
    if (req.method === 'POST' && (g = m(/^\/access-requests\/(\d+)\/(approve|deny)$/))) {
      const args = ['access', g[2], g[1], '--as', me.name];
      if (body?.note) args.push('--note', body.note);
      await cli(args);
      canReadCache.clear();
      const r = (await cliJson(['access', 'list'])).find((x) => String(x.id) === g[1]);
      if (g[2] === 'approve') runtimeGrants.push({ id: 1000 + runtimeGrants.length, product: r.product, grantee: r.requester, granted_by: me.principal, granted_at: r.decided_at });
      return { ...r, can_decide: false };
    }
    if (req.method === 'GET' && p === '/grants') return grants();
    if (req.method === 'POST' && p === '/grants') {
      await cli(['grant', body.product, '--to', body.grantee, '--as', me.name]);
      canReadCache.clear();
      const gr = { id: 1000 + runtimeGrants.length, product: body.product, grantee: body.grantee, granted_by: me.principal, granted_at: new Date().toISOString() };
      runtimeGrants.push(gr);
      return { status: 201, body: gr };
    }
    if (req.method === 'DELETE' && p === '/grants') {
      const product = url.searchParams.get('product');
      const grantee = url.searchParams.get('grantee');
      await cli(['revoke', product, '--from', grantee, '--as', me.name]);
      canReadCache.clear();
      const i = runtimeGrants.findIndex((x) => x.product === product && x.grantee === grantee);
      if (i >= 0) runtimeGrants.splice(i, 1);
      return { ok: true };
    }
    if (req.method === 'GET' && p === '/governance') {
      if (!me.admin) throw new HttpError(403, 'permission_denied', 'governance is for admins');
      const gv = meshYaml().governance || {};
      return {
        classifications: gv.classifications || [],
        default_classification: gv.defaultClassification || 'internal',
        masks: gv.masks || [],
        rules: (gv.rules || []).map((r) => ({ ...r, violations: [] })),
      };
    }
    if (req.method === 'GET' && p === '/audit') {
      if (!me.admin) throw new HttpError(403, 'permission_denied', 'the audit log is for admins');
      const verified = (await run(canopy, root, ['audit', '--verify'])).code === 0;
      let entries = await cliJson(['audit', '--limit', '0']);
      const f = (k) => url.searchParams.get(k);
      entries = entries
        .filter((e) => (!f('principal') || e.principal === f('principal')) && (!f('action') || e.action === f('action')) && (!f('outcome') || e.outcome === f('outcome')))
        .reverse()
        .slice(0, Number(f('limit')) || 200);
      return { verified, entries };
    }
    if (req.method === 'GET' && p === '/domains') return domains().map((d) => ({ name: d.name, description: d.description, owners: d.owners, products: d.productSpecs.length }));
    throw new HttpError(404, 'not_found', `no route ${req.method} ${url.pathname}`);
  }

  return {
    name: 'canopy-mock-api',
    configureServer(server) {
      server.middlewares.use(async (req, res, next) => {
        if (!req.url.startsWith('/api/v1')) return next();
        const url = new URL(req.url, 'http://mock');
        const send = (status, obj) => {
          res.statusCode = status;
          res.setHeader('Content-Type', 'application/json');
          res.end(JSON.stringify(obj));
        };
        try {
          if (url.pathname === '/api/v1/health') return send(200, { status: 'ok', version: 'mock' });
          const token = /^Bearer (.+)$/.exec(req.headers.authorization || '')?.[1];
          const me = token && principal(token.trim());
          if (!me) throw new HttpError(401, 'unauthenticated', 'missing or invalid bearer token');
          let body;
          if (req.method === 'POST') {
            const chunks = [];
            for await (const c of req) chunks.push(c);
            body = chunks.length ? JSON.parse(Buffer.concat(chunks).toString('utf8')) : {};
          }
          const out = await handle(req, me, url, body);
          if (out && typeof out === 'object' && 'status' in out && 'body' in out) return send(out.status, out.body);
          return send(200, out);
        } catch (e) {
          send(e.status || 500, { error: { code: e.code || 'internal', message: e.message } });
        }
      });
    },
  };
}
