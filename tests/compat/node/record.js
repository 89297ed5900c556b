#!/usr/bin/env node
// record.js — regenerates expected.json: the golden outcome of every corpus
// case, produced by Apache OpenWhisk's own Node.js runtime code
// (apache/openwhisk-runtime-nodejs core/nodejsActionBase: app.js, runner.js,
// src/service.js, platform/*.js) running under the local Node, and classified
// with the invoker's rules (ActivationResult.scala processInitResponseContent /
// processRunResponseContent, DockerToActivationLogStore, as summarized in
// shared/reference/openwhisk-runtimes.md §1–2).
//
// Usage (see README.md for the full recipe):
//
//   node tests/compat/node/record.js \
//        --runtime /path/to/openwhisk-runtime-nodejs   # a checkout (any dir with core/nodejsActionBase)
//        --node-modules /path/to/node_modules          # express, body-parser and their deps, serialize-error 9.1.0
//        [--sources tests/compat/node/actions]         # written by sources.js
//        [--out tests/compat/node/expected.json] [--only SUBSTRING] [--jobs 2] [--repeat 2]
//
// expected.json was produced from apache/openwhisk-runtime-nodejs at commit
// d7baea73101058021d4b389521be7b761571a31b (fetched as a snapshot of the public
// repository, exported with `git archive`), with Node v20 and:
//   - express 4.18.2 + body-parser 1.20.1 and their dependencies from Debian
//     bookworm's node-* packages (the runtime's package.json pins express 4.20.0;
//     the npm registry is not reachable here);
//   - serialize-error 9.1.0 (the runtime's pinned version) from the git tag
//     v9.1.0 of sindresorhus/serialize-error.
// The runtime's own files are run unmodified, one fresh process per case
// (`node --expose-gc app.js`, as the image's CMD), from a temporary copy laid out
// like the image (<tmp>/nodejsAction + <tmp>/node_modules). What is shimmed,
// all in a preload (-r) written by this script, touching no runtime code path:
//   1. http.Server#listen: the hard-coded port 8080 is replaced by a free port,
//      so cases can run in parallel;
//   2. process.stdout.write / process.stderr.write are wrapped to also send each
//      chunk, tagged with its stream, to fd 3, so that stdout/stderr
//      interleaving is recorded in the order written (Docker's json-file log
//      keeps it; two pipes would not). Output written to fd 1/2 directly (an
//      uncaught exception's trace) is still read from the real pipes and merged.
// The invoker side (what wasmwhisk must match) is implemented here: /init with
// {value: {name, main, code, binary, env}} (env = the __OW_* values of the
// activation, plus a case's init_env), then /run with {value, namespace,
// action_name, action_version, activation_id, transaction_id, deadline} (no
// api_key: new actions have provide-api-key=false); time limits, the 1 MiB
// result limit, sentinel-delimited log collection and the developer-error log
// warning. Container environment: PATH, HOME=/root, TZ=UTC,
// __OW_API_HOST=http://127.0.0.1:3233, plus a case's env.
//
// Nondeterminism: every case is run --repeat times (default 2); the JSON paths
// that differ between runs are listed in the entry's "varies" and the entry is
// marked "nondeterministic": true (a case may also name paths in its corpus
// "nondeterministic" list). Fixed values are replaced before storing: the
// activation id, transaction id and deadline by <activation_id>,
// <transaction_id>, <deadline>; the temporary runtime folder by /nodejsAction
// and /node_modules (the image's paths); "(node:PID)" by "(node:<pid>)";
// strings over 4096 characters by {"$long_string": {length, sha256, head}}.
//
// Node built-ins only (plus the `zip` command for the one zip action).
'use strict';

const fs = require('fs');
const os = require('os');
const net = require('net');
const path = require('path');
const http = require('http');
const cp = require('child_process');
const { META, STATUS, MAX_RESPONSE, SENTINEL, MSG, textNormalizer, normalizeValue, diffPaths } = require('./lib/common.js');

const HERE = __dirname;
const RUNTIME_COMMIT = 'd7baea73101058021d4b389521be7b761571a31b';

const PRELOAD = `// written by tests/compat/node/record.js: capture shim, see its header
'use strict';
const fs = require('fs');
const http = require('http');
const port = Number(process.env.__COMPAT_RECORD_PORT);
delete process.env.__COMPAT_RECORD_PORT;
const listen = http.Server.prototype.listen;
http.Server.prototype.listen = function (p, ...rest) {
  return listen.call(this, p === 8080 ? port : p, ...rest);
};
for (const [fd, stream] of [[1, process.stdout], [2, process.stderr]]) {
  const write = stream.write;
  stream.write = function (chunk, encoding) {
    try {
      let text;
      if (typeof chunk === 'string') {
        text = typeof encoding === 'string' && !/^utf-?8$/i.test(encoding) ? Buffer.from(chunk, encoding).toString('utf8') : chunk;
      } else text = Buffer.from(chunk).toString('utf8');
      fs.writeSync(3, JSON.stringify([fd, text]) + '\\n');
    } catch (e) { /* never disturb the runtime */ }
    return write.apply(this, arguments);
  };
}
`;

function parseArgs(argv) {
  const a = {
    runtime: null, nodeModules: null, sources: path.join(HERE, 'actions'), corpus: path.join(HERE, 'corpus.json'),
    out: path.join(HERE, 'expected.json'), only: null, jobs: 2, repeat: 2, verbose: false,
  };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i];
    const v = () => argv[++i];
    if (k === '--runtime') a.runtime = v();
    else if (k === '--node-modules') a.nodeModules = v();
    else if (k === '--sources') a.sources = v();
    else if (k === '--corpus') a.corpus = v();
    else if (k === '--out') a.out = v();
    else if (k === '--only') a.only = v();
    else if (k === '--jobs') a.jobs = Number(v());
    else if (k === '--repeat') a.repeat = Number(v());
    else if (k === '-v' || k === '--verbose') a.verbose = true;
    else if (k === '-h' || k === '--help') a.help = true;
    else throw new Error(`unknown argument ${k}`);
  }
  return a;
}

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.unref();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
  });
}

const sleep = ms => new Promise(r => setTimeout(r, ms));

/** POST JSON to the runtime like the invoker's Apache client: no connection reuse, a time limit. */
function post(port, route, body, timeoutMs) {
  return new Promise(resolve => {
    const data = Buffer.from(JSON.stringify(body));
    let settled = false;
    const done = r => { if (!settled) { settled = true; clearTimeout(timer); resolve(r); } };
    const req = http.request({
      host: '127.0.0.1', port, path: route, method: 'POST', agent: false,
      headers: { 'content-type': 'application/json', accept: 'application/json', 'content-length': data.length, connection: 'close' },
    }, res => {
      const chunks = [];
      res.on('data', c => chunks.push(c));
      res.on('end', () => done({ status: res.statusCode, body: Buffer.concat(chunks), contentLength: res.headers['content-length'] }));
      res.on('error', e => done({ error: e }));
    });
    const timer = setTimeout(() => { req.destroy(); done({ timeout: true }); }, timeoutMs);
    req.on('error', e => done({ error: e }));
    req.end(data);
  });
}

/** The invoker's /init retry on a refused connection (every 50 ms), here bounded by the process start budget. */
async function waitForServer(port, child, budgetMs) {
  const end = Date.now() + budgetMs;
  while (Date.now() < end && child.exitCode === null) {
    const ok = await new Promise(resolve => {
      const s = net.connect(port, '127.0.0.1', () => { s.destroy(); resolve(true); });
      s.on('error', () => resolve(false));
    });
    if (ok) return true;
    await sleep(50);
  }
  return false;
}

/** Zips a folder action (as the runtime's tests/dat/actions/build.sh does) and returns base64. */
function zipFolder(dir) {
  const tmp = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'compat-zip-')), 'action.zip');
  cp.execFileSync('zip', ['-q', '-r', '-X', tmp, '.'], { cwd: dir });
  const b64 = fs.readFileSync(tmp).toString('base64');
  fs.rmSync(path.dirname(tmp), { recursive: true, force: true });
  return b64;
}

/**
 * Merges the ordered fd-3 records with the raw pipe output: text present in the
 * pipes but never announced on fd 3 was written to the fd directly (e.g. an
 * uncaught exception's trace) and is placed after the announced text before it.
 */
function mergeOutput(records, raw) {
  const merged = [];
  const pos = { 1: 0, 2: 0 };
  for (const [fd, text] of records) {
    const r = raw[fd];
    const at = r.indexOf(text, pos[fd]);
    if (at > pos[fd]) merged.push([fd, r.slice(pos[fd], at)]);
    if (at >= 0) pos[fd] = at + text.length;
    merged.push([fd, text]);
  }
  for (const fd of [1, 2]) if (pos[fd] < raw[fd].length) merged.push([fd, raw[fd].slice(pos[fd])]);
  return merged;
}

/** Splits the merged chunks into Docker-style log lines, one per newline, each tagged with its stream. */
function toLines(merged) {
  const buf = { 1: '', 2: '' };
  const lines = [];
  for (const [fd, text] of merged) {
    buf[fd] += text;
    let nl;
    while ((nl = buf[fd].indexOf('\n')) >= 0) {
      lines.push({ stream: fd === 1 ? 'stdout' : 'stderr', text: buf[fd].slice(0, nl) });
      buf[fd] = buf[fd].slice(nl + 1);
    }
  }
  return lines; // text left without a newline never becomes a log line
}

/** Runs one case once against a fresh runtime process; returns the raw observations. */
async function runOnce(ctx, action, kase) {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'compat-record-'));
  const rtDir = path.join(tmp, 'nodejsAction');
  fs.cpSync(path.join(ctx.runtime, 'core', 'nodejsActionBase'), rtDir, { recursive: true });
  fs.symlinkSync(ctx.nodeModules, path.join(tmp, 'node_modules'));
  fs.writeFileSync(path.join(tmp, 'preload.js'), PRELOAD);
  const port = await freePort();
  const limit = (action.limits && action.limits.timeout) || 60000;
  const env = Object.assign({
    PATH: process.env.PATH, HOME: '/root', TZ: 'UTC', __OW_API_HOST: META.apiHost, __COMPAT_RECORD_PORT: String(port),
  }, kase.env || {});
  const child = cp.spawn(process.execPath, ['--expose-gc', '-r', path.join(tmp, 'preload.js'), 'app.js'], {
    cwd: rtDir, env, stdio: ['ignore', 'pipe', 'pipe', 'pipe'],
  });
  const records = [];
  const raw = { 1: [], 2: [] };
  let fd3buf = '';
  let sentinels = 0;
  child.stdio[3].on('data', d => {
    fd3buf += d.toString('utf8');
    let nl;
    while ((nl = fd3buf.indexOf('\n')) >= 0) {
      const rec = JSON.parse(fd3buf.slice(0, nl));
      fd3buf = fd3buf.slice(nl + 1);
      records.push(rec);
      if (rec[1].includes(SENTINEL)) sentinels++;
    }
  });
  child.stdout.on('data', d => raw[1].push(d));
  child.stderr.on('data', d => raw[2].push(d));
  const closed = new Promise(r => child.on('close', r));
  let exited = false;
  child.on('exit', () => { exited = true; });

  const name = path.basename(action.file).replace(/\.js$/, '');
  const deadline = String(Date.now() + limit);
  const actionName = `/${META.namespace}/${name}`;
  const initEnv = Object.assign({
    __OW_NAMESPACE: META.namespace, __OW_ACTION_NAME: actionName, __OW_ACTION_VERSION: META.actionVersion,
    __OW_ACTIVATION_ID: META.activationId, __OW_TRANSACTION_ID: META.transactionId, __OW_DEADLINE: deadline,
  }, kase.init_env || {});
  const src = path.join(ctx.sources, action.file);
  const code = action.binary ? zipFolder(src) : fs.readFileSync(src, 'utf8');
  const obs = { limit, deadline, tmp, rtDir };

  const up = await waitForServer(port, child, 15000);
  if (!up) {
    obs.startFailure = true;
  } else {
    const t0 = Date.now();
    obs.init = await post(port, '/init', { value: { name, main: action.main || 'main', code, binary: !!action.binary, env: initEnv } }, limit);
    obs.initMs = Date.now() - t0;
    if (obs.init.status === 200) {
      const t1 = Date.now();
      obs.run = await post(port, '/run', {
        value: kase.params, namespace: META.namespace, action_name: actionName, action_version: META.actionVersion,
        activation_id: META.activationId, transaction_id: META.transactionId, deadline,
      }, limit);
      obs.runMs = Date.now() - t1;
    }
  }
  // Log collection: wait for both sentinels after a normal answer; after a
  // developer error the invoker reads what is there (a short grace here).
  const normal = obs.run && obs.run.status === 200 && !obs.run.timeout;
  if (normal) {
    const end = Date.now() + 5000;
    while (sentinels < 2 && Date.now() < end && !exited) await sleep(10);
    obs.sentinelsSeen = sentinels >= 2;
    await sleep(20);
  } else {
    await sleep(exited ? 50 : 250);
  }
  if (!exited) child.kill('SIGKILL');
  await closed;
  obs.exitCode = child.exitCode;
  const rawText = { 1: Buffer.concat(raw[1]).toString('utf8'), 2: Buffer.concat(raw[2]).toString('utf8') };
  obs.lines = toLines(mergeOutput(records, rawText));
  fs.rmSync(tmp, { recursive: true, force: true });
  return obs;
}

function parseJson(buf) {
  try { return { ok: true, value: JSON.parse(buf.toString('utf8')) }; } catch (e) { return { ok: false }; }
}

const isObject = v => v !== null && typeof v === 'object' && !Array.isArray(v);

/** The invoker's classification of one cold activation (init + run) and its logs. */
function classify(obs) {
  const r = { init_status: null, run_status: null, init_response: null, run_response: null };
  let status, result;
  if (obs.startFailure) {
    status = 3; result = { error: 'the runtime did not start (recorder failure)' };
  } else if (obs.init.timeout || obs.initMs >= obs.limit) {
    status = 2; result = { error: MSG.timeout(obs.limit, true) };
  } else if (obs.init.error) {
    status = 2; result = { error: MSG.abnormalInit };
  } else {
    r.init_status = obs.init.status;
    const initText = obs.init.body.toString('utf8');
    const ij = parseJson(obs.init.body);
    r.init_response = ij.ok ? ij.value : initText;
    if (obs.init.status !== 200) {
      status = 2;
      result = { error: ij.ok && isObject(ij.value) && 'error' in ij.value ? ij.value.error : MSG.invalidInit(initText) };
    } else if (obs.run.timeout || obs.runMs >= obs.limit) {
      status = 2; result = { error: MSG.timeout(obs.limit, false) };
    } else if (obs.run.error) {
      status = 2; result = { error: MSG.abnormalRun };
    } else {
      r.run_status = obs.run.status;
      const len = obs.run.body.length;
      const text = obs.run.body.toString('utf8');
      const rj = parseJson(obs.run.body);
      r.run_response = rj.ok ? rj.value : text;
      const ok = obs.run.status >= 200 && obs.run.status < 300; // akka-http's isSuccess
      if (len > MAX_RESPONSE) {
        status = 1; result = { error: MSG.truncated(len, obs.run.body.subarray(0, MAX_RESPONSE).toString('utf8')) };
      } else if (rj.ok && isObject(rj.value)) {
        if (ok) { status = 'error' in rj.value ? 1 : 0; result = status === 1 ? { error: rj.value.error } : rj.value; }
        else { status = 2; result = { error: 'error' in rj.value ? rj.value.error : MSG.invalidRun(text) }; }
      } else if (rj.ok && Array.isArray(rj.value)) {
        if (ok) { status = 0; result = rj.value; } else { status = 2; result = { error: MSG.invalidRun(text) }; }
      } else {
        status = 2; result = { error: MSG.invalidRun(text) };
      }
    }
  }
  // Logs: sentinel lines dropped; a normal activation ends at the second
  // sentinel; a developer error takes what was written and gets the warning.
  const logs = [];
  let seen = 0;
  for (const l of obs.lines) {
    if (l.text.includes(SENTINEL)) { seen++; if (seen >= 2 && status !== 2) break; continue; }
    logs.push(`${l.stream}: ${l.text}`);
  }
  if (status === 2) logs.push(`stderr: ${MSG.logWarningDeveloperError}`);
  else if (!obs.sentinelsSeen) logs.push(`stderr: ${MSG.logFailure}`);
  return Object.assign(r, { status: STATUS[status], status_code: status, result, logs });
}

function normalizeEntry(entry, obs, ctx) {
  const norm = textNormalizer([
    [obs.rtDir, '/nodejsAction'],
    [path.join(obs.tmp, 'node_modules'), '/node_modules'],
    [ctx.nodeModulesReal, '/node_modules'],
    [ctx.nodeModules, '/node_modules'],
    [obs.tmp, '/'],
    [META.activationId, '<activation_id>'],
    [META.transactionId, '<transaction_id>'],
    [obs.deadline, '<deadline>'],
  ]);
  for (const k of ['init_response', 'run_response', 'result']) entry[k] = normalizeValue(entry[k], norm);
  entry.logs = entry.logs.map(l => {
    const v = normalizeValue(l, norm);
    return typeof v === 'string' ? v : JSON.stringify(v);
  });
  return entry;
}

async function recordCase(ctx, action, kase) {
  const runs = [];
  for (let i = 0; i < ctx.repeat; i++) {
    const obs = await runOnce(ctx, action, kase);
    runs.push(normalizeEntry(classify(obs), obs, ctx));
  }
  const first = runs[0];
  const entry = { file: action.file, case: kase.name };
  const fields = ['init_status', 'run_status', 'status', 'status_code', 'result', 'logs', 'init_response', 'run_response'];
  for (const f of fields) entry[f] = first[f];
  const varies = new Set(kase.nondeterministic || []);
  for (const other of runs.slice(1)) {
    for (const f of fields) for (const p of diffPaths(first[f], other[f])) varies.add(p === '.' ? f : f + p);
  }
  if (varies.size) { entry.nondeterministic = true; entry.varies = [...varies].sort(); }
  return entry;
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  if (args.help || !args.runtime || !args.nodeModules) {
    console.log('usage: node record.js --runtime DIR --node-modules DIR [--sources DIR] [--out FILE] [--only SUBSTRING] [--jobs N] [--repeat N]');
    process.exit(args.help ? 0 : 2);
  }
  const runtime = path.resolve(args.runtime);
  if (!fs.existsSync(path.join(runtime, 'core', 'nodejsActionBase', 'app.js'))) throw new Error(`${runtime} has no core/nodejsActionBase/app.js`);
  const nodeModules = path.resolve(args.nodeModules);
  for (const m of ['express', 'body-parser', 'serialize-error']) {
    if (!fs.existsSync(path.join(nodeModules, m, 'package.json'))) throw new Error(`${nodeModules} has no ${m}`);
  }
  const version = m => JSON.parse(fs.readFileSync(path.join(nodeModules, m, 'package.json'), 'utf8')).version;
  const ctx = { runtime, nodeModules, nodeModulesReal: fs.realpathSync(nodeModules), sources: path.resolve(args.sources), repeat: Math.max(1, args.repeat) };
  const corpus = JSON.parse(fs.readFileSync(args.corpus, 'utf8'));
  const work = [];
  for (const action of corpus.actions) {
    if (!fs.existsSync(path.join(ctx.sources, action.file))) throw new Error(`missing source ${action.file}: run sources.js first`);
    for (const kase of action.cases) {
      if (args.only && !`${action.file}#${kase.name}`.includes(args.only)) continue;
      work.push({ action, kase });
    }
  }
  const entries = new Array(work.length);
  let next = 0, done = 0;
  const t0 = Date.now();
  async function worker() {
    while (next < work.length) {
      const i = next++;
      const { action, kase } = work[i];
      entries[i] = await recordCase(ctx, action, kase);
      done++;
      if (args.verbose) console.error(`[${done}/${work.length}] ${action.file}#${kase.name}: ${entries[i].status}${entries[i].nondeterministic ? ' (nondeterministic: ' + entries[i].varies.join(', ') + ')' : ''}`);
    }
  }
  await Promise.all(Array.from({ length: Math.max(1, args.jobs) }, worker));
  const out = {
    schema: 1,
    generated_by: 'tests/compat/node/record.js',
    reference: {
      runtime: { repo: 'apache/openwhisk-runtime-nodejs', commit: RUNTIME_COMMIT, path: 'core/nodejsActionBase' },
      node: process.version,
      express: version('express'),
      'body-parser': version('body-parser'),
      'serialize-error': version('serialize-error'),
      repeat: ctx.repeat,
      container_env: { TZ: 'UTC', HOME: '/root', __OW_API_HOST: META.apiHost },
      activation: { namespace: META.namespace, action_name: `/${META.namespace}/<file stem>`, action_version: META.actionVersion, activation_id: '<activation_id>', transaction_id: '<transaction_id>', deadline: '<deadline>', api_key: null },
    },
    entries,
  };
  fs.writeFileSync(args.out, JSON.stringify(out, null, 1) + '\n');
  const counts = {};
  for (const e of entries) counts[e.status] = (counts[e.status] || 0) + 1;
  console.log(`${entries.length} cases recorded in ${((Date.now() - t0) / 1000).toFixed(0)} s to ${args.out}: ${JSON.stringify(counts)}; nondeterministic: ${entries.filter(e => e.nondeterministic).length}`);
}

module.exports = { classify, toLines, mergeOutput };

if (require.main === module) {
  main().catch(e => { console.error(`error: ${e.stack || e}`); process.exit(1); });
}
