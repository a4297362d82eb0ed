// The no-code product builder: a member of a domain draws a flow of blocks (sources, filters,
// joins, …, output ports) on a canvas, sees each block's rows as they would read them, reviews
// the files it makes as diffs, saves them into the mesh and builds the product.
//
// #/builder starts a new product; #/builder/{domain}/{product} opens one made with the builder
// (read-only for non-members; a product written by hand shows its SQL).
import { useEffect, useMemo, useState } from 'preact/hooks';
import { api, enc, useApi } from '../api.js';
import { ErrorBox, Loading, Notice } from '../components/common.jsx';
import { BlockEditor } from '../components/builder/BlockEditor.jsx';
import { BlockPreview } from '../components/builder/BlockPreview.jsx';
import { BuildPanel } from '../components/builder/BuildPanel.jsx';
import { FlowCanvas } from '../components/builder/FlowCanvas.jsx';
import { TextField } from '../components/builder/fields.jsx';
import { ReviewPanel } from '../components/builder/ReviewPanel.jsx';
import { SourcePalette } from '../components/builder/SourcePalette.jsx';
import { savePath, typesFromPlan, useDryRun, usePreviews } from '../components/builder/previews.js';
import { BLOCK_TYPES, emptyFlow, flowProblems, freeId, fromWire, isSqlName, newBlock, removeBlock, renameBlock, sourceBase, wireFlow } from '../flow.js';
import { productHref } from '../router.js';

function ProductFields({ flow, setProduct, domain, setDomain, domains, existing, readOnly }) {
  const p = flow.product;
  return (
    <section class="card product-form" aria-labelledby="product-form-title">
      <h2 id="product-form-title" class="sr-only">
        The product
      </h2>
      <div class="form-row">
        <label class="field">
          <span>Domain</span>
          <select value={domain} onChange={(e) => setDomain(e.currentTarget.value)} disabled={!!existing || !domains.length} data-testid="builder-domain">
            {!domains.length && <option value="">you are a member of no domain</option>}
            {domains.map((d) => (
              <option key={d.name} value={d.name}>
                {d.name}
                {d.member ? '' : ' (not a member)'}
              </option>
            ))}
          </select>
        </label>
        <label class="field">
          <span>Product name</span>
          <input
            type="text"
            class="mono product-name"
            value={p.name}
            disabled={!!existing || readOnly}
            onInput={(e) => setProduct({ name: e.currentTarget.value })}
            aria-invalid={p.name && !isSqlName(p.name) ? 'true' : 'false'}
            placeholder="sales_by_region"
            data-testid="product-name"
            autocomplete="off"
          />
        </label>
        <label class="field grow">
          <span>Purpose (what it is for, in a sentence or two)</span>
          <input type="text" value={p.purpose} disabled={readOnly} onInput={(e) => setProduct({ purpose: e.currentTarget.value })} data-testid="product-purpose" />
        </label>
      </div>
      {p.name && !isSqlName(p.name) && <p class="field-error">A product name is a SQL name: lower-case letters, digits and _, starting with a letter (at most 63).</p>}
      {existing && <p class="muted small">A saved product keeps its name; to rename it, save its flow as a new product.</p>}
      <details class="more">
        <summary data-testid="product-more">Usage, limitations, tags, visibility, version</summary>
        <fieldset class="plain" disabled={readOnly}>
          <div class="form-row">
            <label class="field grow">
              <span>Usage</span>
              <input type="text" value={p.usage} onInput={(e) => setProduct({ usage: e.currentTarget.value })} data-testid="product-usage" />
            </label>
            <label class="field grow">
              <span>Limitations</span>
              <input type="text" value={p.limitations} onInput={(e) => setProduct({ limitations: e.currentTarget.value })} data-testid="product-limitations" />
            </label>
          </div>
          <div class="form-row">
            <label class="field">
              <span>Tags (comma-separated)</span>
              <TextField
                value={p.tags}
                parse={(t) => t.split(',').map((x) => x.trim()).filter(Boolean)}
                format={(v) => v.join(', ')}
                onChange={(tags) => setProduct({ tags })}
                data-testid="product-tags"
              />
            </label>
            <label class="field">
              <span>Visibility</span>
              <select value={p.visibility} onChange={(e) => setProduct({ visibility: e.currentTarget.value })} data-testid="product-visibility">
                <option value="internal">internal</option>
                <option value="public">public</option>
                <option value="private">private</option>
              </select>
            </label>
            <label class="field">
              <span>Type</span>
              <select value={p.type} onChange={(e) => setProduct({ type: e.currentTarget.value })} data-testid="product-type">
                <option value="consumerAligned">consumer-aligned</option>
                <option value="aggregate">aggregate</option>
                <option value="sourceAligned">source-aligned</option>
              </select>
            </label>
            <label class="field">
              <span>Version</span>
              <input type="text" value={p.version} onInput={(e) => setProduct({ version: e.currentTarget.value })} data-testid="product-version" size="8" />
            </label>
            <label class="field">
              <span>Status</span>
              <select value={p.status} onChange={(e) => setProduct({ status: e.currentTarget.value })} data-testid="product-status">
                <option value="draft">draft</option>
                <option value="active">active</option>
                <option value="deprecated">deprecated</option>
              </select>
            </label>
          </div>
        </fieldset>
      </details>
    </section>
  );
}

// A product written by hand: nothing to draw, its SQL as it is.
function HandWritten({ address, opened }) {
  const [d, p] = address.split('.');
  return (
    <div class="page" data-testid="page-builder" data-mode="hand-written">
      <h1>Product builder</h1>
      <Notice kind="info" testid="builder-read-only">
        <strong>{address} is read-only here.</strong> {opened.reason} <a href={productHref(d, p)}>Open its product page.</a>
      </Notice>
      {(opened.models || []).map((m) => (
        <section class="card" key={m.name} data-testid={`model-${m.name}`}>
          <h2 class="mono">{m.name}</h2>
          <pre class="code">{m.sql}</pre>
        </section>
      ))}
      {!opened.models?.length && <p class="muted">Its SQL is shown to the members of {d}.</p>}
    </div>
  );
}

export function Builder({ me, domain: routeDomain, name: routeName }) {
  const sources = useApi('/api/v1/builder/sources');
  const vocabulary = useApi('/api/v1/builder/vocabulary');
  const opened = useApi(routeDomain && routeName ? `/api/v1/domains/${enc(routeDomain)}/products/${enc(routeName)}/flow` : null);

  const [flow, setFlow] = useState(emptyFlow);
  const [selected, setSelected] = useState(null);
  const [domain, setDomain] = useState(routeDomain || me.domains?.[0] || '');
  const [existing, setExisting] = useState(routeName || ''); // the product on the server, saved with PUT
  const [review, setReview] = useState(null);
  const [save, setSave] = useState(null);
  // The flow as last saved: its JSON, or 'opened' (as read from the server, not edited since),
  // 'edited' (opened, then changed), null (never saved).
  const [savedKey, setSavedKey] = useState(null);

  useEffect(() => {
    if (!opened.data?.flow) return;
    const f = fromWire(opened.data.flow);
    setFlow(f);
    setSelected(f.blocks.find((b) => b.type === 'output')?.id || f.blocks[0]?.id || null);
    setSavedKey('opened');
  }, [opened.data]);

  const readOnly = !!opened.data?.read_only;
  const member = !!domain && (me.domains || []).includes(domain);
  // The files of the domain's data/ folder: their columns from the sources the builder may read,
  // their size and age from the domain's uploads (members only).
  const uploads = useApi(member ? `/api/v1/domains/${enc(domain)}/uploads` : null);
  const [fresh, setFresh] = useState('');
  const [uploadsDone, setUploadsDone] = useState(0);
  const files = useMemo(() => {
    const listed = (sources.data?.files || []).filter((f) => f.domain === domain);
    const more = uploads.data?.files || [];
    const byFile = new Map(more.map((f) => [f.file, f]));
    const out = listed.map((f) => ({ ...byFile.get(f.file), ...f }));
    for (const f of more) if (!out.some((x) => x.file === f.file)) out.push({ domain, ...f });
    return out.sort((a, b) => a.file.localeCompare(b.file));
  }, [sources.data, uploads.data, domain]);
  const { plan, retry } = usePreviews(flow, domain, uploadsDone);
  const block = flow.blocks.find((b) => b.id === selected) || null;
  const dryRun = useDryRun({ flow, plan, domain, existing, wanted: block?.type === 'output' });
  const problems = flowProblems(flow);
  const body = useMemo(() => ({ flow: wireFlow(flow, typesFromPlan(flow, plan)) }), [flow, plan]);
  const bodyKey = JSON.stringify([domain, body]);
  // Unsaved changes: a new flow, an opened one once edited, a saved one that changed since.
  const dirty = savedKey === 'opened' ? false : savedKey === null || savedKey === 'edited' ? true : savedKey !== bodyKey;

  const domains = useMemo(() => {
    const list = (me.domains || []).map((d) => ({ name: d, member: true }));
    if (routeDomain && !list.some((d) => d.name === routeDomain)) list.push({ name: routeDomain, member: false });
    return list;
  }, [me, routeDomain]);

  const edit = (fn) => {
    setFlow((f) => fn(f));
    if (savedKey === 'opened') setSavedKey('edited');
  };
  const setProduct = (patch) => edit((f) => ({ ...f, product: { ...f.product, ...patch } }));
  const add = (type) => {
    const from = block ? (block.type === 'output' ? block.input : block.id) : '';
    const b = newBlock(flow, type, type === 'source' ? '' : from);
    edit((f) => ({ ...f, blocks: [...f.blocks, b] }));
    setSelected(b.id);
  };
  // A source block on a port ({port}) or a file of the domain ({file}), from the palette.
  const addSource = (ref) => {
    const id = freeId(flow, sourceBase(ref.port || ref.file) || 'source');
    const b = ref.file !== undefined ? { id, type: 'source', file: ref.file } : { id, type: 'source', port: ref.port };
    edit((f) => ({ ...f, blocks: [...f.blocks, b] }));
    setSelected(b.id);
  };
  const uploaded = (result) => {
    setFresh(result.file);
    setUploadsDone((n) => n + 1);
    sources.reload();
    uploads.reload();
  };
  const changeBlock = (id, next) => {
    edit((f) => {
      let g = next.id !== id ? renameBlock(f, id, next.id) : f;
      g = { ...g, blocks: g.blocks.map((b) => (b.id === next.id ? next : b)) };
      return g;
    });
    if (next.id !== id) setSelected(next.id);
  };
  const remove = (id) => {
    edit((f) => removeBlock(f, id));
    setSelected(null);
  };

  const address = domain && flow.product.name ? `${domain}.${flow.product.name}` : '';
  const runReview = async () => {
    const key = bodyKey;
    setReview({ key, state: 'loading' });
    setSave(null);
    const { method, path } = savePath(domain, existing);
    try {
      const data = await api(path, { method, body: { ...body, dry_run: true } });
      setReview({ key, state: 'ok', data });
    } catch (error) {
      setReview({ key, state: 'error', error });
    }
  };
  const runSave = async () => {
    const key = bodyKey;
    setSave({ key, state: 'saving' });
    const { method, path } = savePath(domain, existing);
    try {
      const data = await api(path, { method, body: { ...body, dry_run: false } });
      setSave({ key, state: 'ok', data });
      setSavedKey(key);
      setExisting(flow.product.name);
      // The address of what is now a saved product, without reloading the page.
      history.replaceState(null, '', `#/builder/${enc(domain)}/${enc(flow.product.name)}`);
    } catch (error) {
      setSave({ key, state: 'error', error });
    }
  };

  if (opened.loading || (routeName && !opened.data && !opened.error)) return <Loading label="Opening the flow…" />;
  if (opened.error) {
    return (
      <div class="page" data-testid="page-builder">
        <h1>Product builder</h1>
        <ErrorBox error={opened.error} title={opened.error.status === 404 ? `No product ${routeDomain}.${routeName}.` : 'Could not open the flow.'} testid="builder-open-error" />
        <a href="#/builder">Start a new product</a>
      </div>
    );
  }
  if (opened.data && !opened.data.flow) return <HandWritten address={`${routeDomain}.${routeName}`} opened={opened.data} />;

  const buildBlocked = !existing ? 'Save the product first: the build reads the saved files.' : dirty ? 'Save your changes first: the build reads the saved files.' : '';

  return (
    <div class="page page-wide builder" data-testid="page-builder" data-mode={existing ? 'existing' : 'new'} data-read-only={readOnly ? 'true' : 'false'}>
      <header class="page-head">
        <h1>Product builder</h1>
        <p class="muted">
          Draw a data product from the ports you may read and the files of your domain — no SQL to write. Each block shows its first rows as <strong>you</strong> read them (masked columns stay
          masked); saving writes the product's files into {domain || 'a domain'} for review like any change.
        </p>
      </header>
      {opened.data?.converted && (
        <Notice kind="info" testid="builder-converted">
          <strong>{address} was {opened.data.note}.</strong> Review the files before saving: its hand-written SQL files that the flow no longer uses are removed.
        </Notice>
      )}
      {readOnly && (
        <Notice kind="warn" testid="builder-read-only">
          <strong>Read-only:</strong> {opened.data.reason}. You can look at each block and its preview; saving is for the members of {routeDomain}.
        </Notice>
      )}
      {!domains.length && (
        <Notice kind="info" testid="builder-no-domain">
          You are a member of no domain: you can draw a flow and preview it, but only a domain's members may save products in it. Ask a domain's owner to add you.
        </Notice>
      )}
      <ErrorBox error={sources.error} title="Could not list the ports you may read." testid="sources-error" />
      <ProductFields flow={flow} setProduct={setProduct} domain={domain} setDomain={setDomain} domains={domains} existing={existing} readOnly={readOnly} />

      <div class="palette" role="group" aria-label="Add a block" data-testid="palette">
        <span class="palette-label">Add</span>
        {BLOCK_TYPES.map((t) => (
          <button
            key={t.type}
            type="button"
            class={`btn btn-small palette-${t.type}`}
            title={t.help}
            disabled={readOnly || (t.type !== 'source' && !flow.blocks.length)}
            onClick={() => add(t.type)}
            data-testid={`add-${t.type}`}
          >
            + {t.label}
          </button>
        ))}
      </div>

      <SourcePalette
        domain={domain}
        member={member}
        sources={sources}
        uploads={uploads}
        files={files}
        fresh={fresh}
        readOnly={readOnly}
        onAdd={addSource}
        onUploaded={uploaded}
      />

      <div class="builder-canvas-wrap">
        <FlowCanvas blocks={flow.blocks} previews={plan} selected={selected} onSelect={setSelected} />
        <p class="muted small">New blocks read the selected block. Select a block to edit it and see its rows.</p>
      </div>

      <div class={`builder-main${block ? '' : ' builder-main-empty'}`}>
        <div class="builder-editor-col">
          {block ? (
            <fieldset class="plain" disabled={readOnly}>
              <BlockEditor
                key={block.id}
                flow={flow}
                block={block}
                onChange={(next) => changeBlock(block.id, next)}
                onRemove={() => remove(block.id)}
                sources={sources.data?.sources || []}
                files={files}
                domain={domain}
                vocabulary={vocabulary.data}
                plan={plan}
                dryRun={dryRun}
              />
            </fieldset>
          ) : (
            <section class="card block-editor-empty">
              <p class="muted">{flow.blocks.length ? 'Select a block on the canvas to edit it.' : 'Add a source to start.'}</p>
              {sources.loading && <Loading label="Listing the ports you may read…" />}
              {sources.data && (
                <p class="small muted">
                  You may read {sources.data.sources.length} ports{domain && member ? ` and ${files.length} file${files.length === 1 ? '' : 's'} of ${domain}` : ''}.
                </p>
              )}
            </section>
          )}
        </div>
        {block && (
          <div class="builder-preview-col">
            <BlockPreview blockId={block.id} entry={plan.get(block.id)} onRetry={retry} />
          </div>
        )}
      </div>

      <section class="card save-bar" aria-label="Save">
        <div class="card-head">
          <h2>Save {address && <span class="mono muted">{address}</span>}</h2>
          <button type="button" class="btn btn-primary" onClick={runReview} disabled={!!problems.length || !domain || review?.state === 'loading'} data-testid="review-save">
            Review &amp; save
          </button>
        </div>
        {problems.length > 0 && (
          <ul class="problems" data-testid="flow-problems" aria-label="Before saving">
            {problems.map((p, i) => (
              <li key={i}>
                {p.block ? (
                  <button type="button" class="btn-link-inline" onClick={() => setSelected(p.block)}>
                    {p.block}
                  </button>
                ) : null}
                {p.block ? ': ' : ''}
                {p.message}
              </li>
            ))}
          </ul>
        )}
        {!problems.length && !review && <p class="muted small">The flow is complete. Review the files it makes before saving them.</p>}
      </section>

      {review && (
        <ReviewPanel
          review={review}
          save={save}
          stale={review.key !== bodyKey}
          address={address}
          onReview={runReview}
          onSave={runSave}
          onClose={() => {
            setReview(null);
            if (save?.state !== 'ok') setSave(null);
          }}
        />
      )}
      {existing && <BuildPanel target={`${domain}.${existing}`} blocked={buildBlocked} />}
    </div>
  );
}
