#!/usr/bin/env node
// compare.js — runs every corpus case with `wasmwhisk run` and compares its
// status, result and logs with expected.json (the nodejs runtime's outcome,
// recorded by record.js), then prints the differences grouped by kind.
//
//   node tests/compat/node/compare.js --wasmwhisk /path/to/wasmwhisk \
//        [--sources tests/compat/node/actions] [--expected tests/compat/node/expected.json]
//        [--only SUBSTRING] [--jobs 2] [--examples 3] [--json report.json]
//        [--strict-stack] [--strict-order]
//
// How a case is run (docs/cli.md, README "Run one action once"):
//   WASMWHISK_DATA_DIR=<tmp> wasmwhisk run FILE -P <params.json> --main MAIN -t TIMEOUT --kind nodejs:20
// The exit status is OpenWhisk's status code (0 success, 1 application error,
// 2 developer error, 3 internal error); the result is printed as JSON on
// stdout; the logs are printed on stderr in OpenWhisk's "%-30s %s: %s" form,
// followed by one `error (STATUS): MESSAGE` line when the activation failed.
// A folder action (zip action) is zipped to <stem>.zip first. A case's
// init_env (init-time parameters) cannot be given to `wasmwhisk run`; such
// cases are reported under their own kind.
//
// What is compared, after the same normalization record.js applies
// (lib/common.js) plus: any 32-hex-digit string → <activation_id>, a string of
// exactly 13 digits → <deadline>:
//   - status (success / application error / action developer error / whisk internal error);
//   - result, as JSON values; key order is checked separately (kind "key order";
//     --strict-order is implied: it always counts as a difference);
//   - logs, as "stream: text" lines without their timestamps.
// Stack traces are environment-specific (the reference's frames include
// express internals); unless --strict-stack, a "stack" string is compared by
// its first line only, a string containing "\n    at " is cut there, and log
// lines that are stack frames ("    at …") are dropped on both sides. Paths
// listed in an entry's "varies" (nondeterministic) are not compared.
//
// Node built-ins only (plus the `zip` command for the one zip action).
'use strict';

const fs = require('fs');
const os = require('os');
const path = require('path');
const cp = require('child_process');
const { STATUS, textNormalizer, normalizeValue, diffPaths, sameOrder } = require('./lib/common.js');

const HERE = __dirname;

function parseArgs(argv) {
  const a = {
    wasmwhisk: null, sources: path.join(HERE, 'actions'), expected: path.join(HERE, 'expected.json'),
    corpus: path.join(HERE, 'corpus.json'), only: null, jobs: 2, examples: 3, json: null, strictStack: false,
  };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i];
    const v = () => argv[++i];
    if (k === '--wasmwhisk') a.wasmwhisk = v();
    else if (k === '--sources') a.sources = v();
    else if (k === '--expected') a.expected = v();
    else if (k === '--corpus') a.corpus = v();
    else if (k === '--only') a.only = v();
    else if (k === '--jobs') a.jobs = Number(v());
    else if (k === '--examples') a.examples = Number(v());
    else if (k === '--json') a.json = v();
    else if (k === '--strict-stack') a.strictStack = true;
    else if (k === '--strict-order') { /* always on */ }
    else if (k === '-h' || k === '--help') a.help = true;
    else throw new Error(`unknown argument ${k}`);
  }
  return a;
}

const LOG_LINE = /^\d{4}-\d\d-\d\dT\S*\s+(stdout|stderr): ?(.*)$/;

/** Runs one case with `wasmwhisk run`; resolves to {status, exit, result, logs, other}. */
async function runWasmwhisk(ctx, action, kase) {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'compat-compare-'));
  try {
    let file = path.join(ctx.sources, action.file);
    if (action.binary) {
      const zip = path.join(tmp, path.basename(action.file) + '.zip');
      cp.execFileSync('zip', ['-q', '-r', '-X', zip, '.'], { cwd: file });
      file = zip;
    }
    const paramsFile = path.join(tmp, 'params.json');
    fs.writeFileSync(paramsFile, JSON.stringify(kase.params));
    const timeout = (action.limits && action.limits.timeout) || 60000;
    const args = ['run', file, '-P', paramsFile, '--main', action.main || 'main', '-t', String(timeout), '--kind', 'nodejs:20'];
    const r = await new Promise(resolve => {
      const child = cp.spawn(ctx.wasmwhisk, args, {
        env: Object.assign({}, process.env, { WASMWHISK_DATA_DIR: ctx.dataDir }, kase.env || {}),
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      const so = [], se = [];
      child.stdout.on('data', d => so.push(d));
      child.stderr.on('data', d => se.push(d));
      const timer = setTimeout(() => child.kill('SIGKILL'), timeout + 30000);
      child.on('error', err => { clearTimeout(timer); resolve({ status: null, signal: null, stdout: '', stderr: String(err) }); });
      child.on('close', (status, signal) => {
        clearTimeout(timer);
        resolve({ status, signal, stdout: Buffer.concat(so).toString('utf8'), stderr: Buffer.concat(se).toString('utf8') });
      });
    });
    const out = { exit: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
    out.status = r.status !== null && r.status >= 0 && r.status <= 3 ? STATUS[r.status] : `harness failure (exit ${r.status}${r.signal ? ', ' + r.signal : ''})`;
    try { out.result = JSON.parse(out.stdout); } catch (e) { out.result = out.stdout.trim() ? { $unparsed_stdout: out.stdout.trim() } : null; }
    out.logs = [];
    out.other = [];
    for (const line of out.stderr.split('\n')) {
      const m = line.match(LOG_LINE);
      if (m) out.logs.push(`${m[1]}: ${m[2]}`);
      else if (line.trim()) out.other.push(line);
    }
    return out;
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

// ---------- normalization for comparison

const normActual = (() => {
  const base = textNormalizer([]);
  return s => base(s).replace(/\b[0-9a-f]{32}\b/g, '<activation_id>').replace(/^\d{13}$/, '<deadline>');
})();

function cutStacks(value, strict) {
  if (strict) return value;
  if (typeof value === 'string') {
    const at = value.search(/\n\s+at /);
    return at >= 0 ? value.slice(0, at) : value;
  }
  if (Array.isArray(value)) return value.map(v => cutStacks(v, strict));
  if (value && typeof value === 'object') {
    const o = {};
    for (const [k, v] of Object.entries(value)) o[k] = k === 'stack' && typeof v === 'string' ? v.split('\n')[0] : cutStacks(v, strict);
    return o;
  }
  return value;
}

function dropFrames(logs, strict) {
  return strict ? logs : logs.filter(l => !/^(stdout|stderr):\s+at /.test(l));
}

/** Sets the value at a "varies" path (e.g. result.date, logs[3]) to a marker on a copy. */
function mask(root, p) {
  const parts = [];
  p.replace(/\.([A-Za-z_$][\w$]*)|\[(\d+)\]|\[("(?:[^"\\]|\\.)*")\]|^([A-Za-z_]+)/g, (_, a, b, c, d) => {
    parts.push(a !== undefined ? a : b !== undefined ? Number(b) : c !== undefined ? JSON.parse(c) : d);
    return '';
  });
  let o = root;
  for (let i = 0; i < parts.length - 1; i++) {
    if (o === null || typeof o !== 'object' || !(parts[i] in o)) return;
    o = o[parts[i]];
  }
  const last = parts[parts.length - 1];
  if (o !== null && typeof o === 'object' && last in o) o[last] = '<varies>';
}

function comparable(side, varies, strict) {
  const c = { status: side.status, result: cutStacks(side.result, strict), logs: dropFrames(side.logs, strict) };
  for (const p of varies || []) {
    if (p === 'logs') c.logs = '<varies>';
    else if (p === 'result') c.result = '<varies>';
    else if (p.startsWith('result') || p.startsWith('logs')) mask(c, p);
  }
  return c;
}

// ---------- classification of a difference

const KIND_ORDER = [
  'harness: wasmwhisk refused the case', 'zip action', 'init parameters (init_env) not expressible',
  'needs fs / child_process / network (allowed to differ)',
  'missing global or module', 'timing / time limit', 'error shape: rejected promise or async throw',
  'error shape: synchronous throw', 'error shape: init failure', 'error shape: other status',
  'result value', 'key order', 'logs: console formatting', 'logs: missing or extra lines', 'logs: developer-error warning line',
];

function missingName(exp, act) {
  const text = JSON.stringify(act.result) + '\n' + act.logs.join('\n') + '\n' + act.other.join('\n');
  const expText = JSON.stringify(exp.result) + '\n' + exp.logs.join('\n');
  const patterns = [/ReferenceError: (\w+) is not defined/, /Cannot find module '([^']+)'/, /(\w+(?:\.\w+)*) is not a function/, /'(\w+)' is not defined/];
  for (const re of patterns) {
    const m = text.match(re);
    if (m && !expText.includes(m[0])) return m[1];
  }
  return null;
}

function classify(action, kase, exp, act, e, a) {
  const kinds = [];
  if (act.status.startsWith('harness') || (act.exit === 3 && act.logs.length === 0 && act.result === null)) kinds.push('harness: wasmwhisk refused the case');
  if (action.binary) kinds.push('zip action');
  if (kase.init_env) kinds.push('init parameters (init_env) not expressible');
  const needs = action.needs || [];
  // Only these may legitimately differ (issue 14: the sandbox grants no
  // filesystem, processes or network). "process.exit" and "whisk-global" tags
  // are informational: the runtime's answer for them is still the target.
  if (needs.some(n => n === 'fs' || n === 'child_process' || n === 'network')) kinds.push('needs fs / child_process / network (allowed to differ)');
  const missing = missingName(exp, act);
  if (missing) kinds.push('missing global or module');
  const timeoutRe = /exceeded its time limits/;
  if (timeoutRe.test(JSON.stringify(exp.result)) !== timeoutRe.test(JSON.stringify(act.result))) kinds.push('timing / time limit');
  if (e.status !== a.status) {
    if (exp.status === 'application error' && exp.result && exp.result.error && typeof exp.result.error === 'object') kinds.push('error shape: rejected promise or async throw');
    else if (exp.status === 'application error' && exp.run_status === 200) kinds.push('error shape: rejected promise or async throw');
    else if (/^An error has occurred: /.test(exp.result && exp.result.error)) kinds.push('error shape: synchronous throw');
    else if (exp.init_status !== 200) kinds.push('error shape: init failure');
    else kinds.push('error shape: other status');
  } else if (diffPaths(e.result, a.result).length) {
    if (exp.init_status !== null && exp.init_status !== 200) kinds.push('error shape: init failure');
    else if (/^An error has occurred: /.test(exp.result && exp.result.error)) kinds.push('error shape: synchronous throw');
    else if (exp.status === 'application error' && exp.result && typeof exp.result.error === 'object') kinds.push('error shape: rejected promise or async throw');
    else kinds.push('result value');
  } else if (!sameOrder(e.result, a.result)) kinds.push('key order');
  if (JSON.stringify(e.logs) !== JSON.stringify(a.logs)) {
    const el = Array.isArray(e.logs) ? e.logs : [], al = Array.isArray(a.logs) ? a.logs : [];
    const warn = l => /Log data might be missing|Logs were truncated|issue while collecting/.test(l);
    const ew = el.filter(l => !warn(l)), aw = al.filter(l => !warn(l));
    if (JSON.stringify(ew) === JSON.stringify(aw)) kinds.push('logs: developer-error warning line');
    else if (ew.length === aw.length) kinds.push('logs: console formatting');
    else kinds.push('logs: missing or extra lines');
  }
  kinds.sort((x, y) => KIND_ORDER.indexOf(x) - KIND_ORDER.indexOf(y));
  return { kinds, missing };
}

function short(v, n = 160) {
  const s = typeof v === 'string' ? v : JSON.stringify(v);
  return s === undefined ? 'undefined' : s.length > n ? s.slice(0, n) + '…' : s;
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  if (args.help || !args.wasmwhisk) {
    console.log('usage: node compare.js --wasmwhisk PATH [--sources DIR] [--expected FILE] [--only SUBSTRING] [--jobs N] [--examples N] [--json FILE] [--strict-stack]');
    process.exit(args.help ? 0 : 2);
  }
  const expected = JSON.parse(fs.readFileSync(args.expected, 'utf8'));
  const corpus = JSON.parse(fs.readFileSync(args.corpus, 'utf8'));
  const byFile = new Map(corpus.actions.map(a => [a.file, a]));
  const ctx = {
    wasmwhisk: path.resolve(args.wasmwhisk), sources: path.resolve(args.sources),
    dataDir: fs.mkdtempSync(path.join(os.tmpdir(), 'compat-wasmwhisk-data-')),
  };
  const work = expected.entries.filter(x => !args.only || `${x.file}#${x.case}`.includes(args.only));
  const rows = new Array(work.length);
  async function doOne(i) {
    const exp = work[i];
    const action = byFile.get(exp.file);
    const kase = action.cases.find(c => c.name === exp.case);
    const act = await runWasmwhisk(ctx, action, kase);
    act.result = normalizeValue(act.result, normActual);
    act.logs = act.logs.map(l => { const v = normalizeValue(l, normActual); return typeof v === 'string' ? v : JSON.stringify(v); });
    const e = comparable(exp, exp.varies, args.strictStack);
    const a = comparable(act, exp.varies, args.strictStack);
    const same = !kase.init_env && e.status === a.status && diffPaths(e.result, a.result).length === 0
      && sameOrder(e.result, a.result) && JSON.stringify(e.logs) === JSON.stringify(a.logs);
    rows[i] = Object.assign({ exp, act, same }, same ? { kinds: [] } : classify(action, kase, exp, act, e, a));
  }
  // The first run prepares the JS runtime in the fresh data dir: do it alone,
  // then run the rest in parallel processes.
  if (work.length) await doOne(0);
  let next = 1;
  async function worker() {
    while (next < work.length) {
      const i = next++;
      await doOne(i);
    }
  }
  await Promise.all(Array.from({ length: Math.max(1, args.jobs) }, worker));
  fs.rmSync(ctx.dataDir, { recursive: true, force: true });

  // ---------- report
  const total = rows.length, same = rows.filter(r => r.same).length;
  const byKind = new Map(), primary = new Map();
  for (const r of rows) {
    if (r.same) continue;
    const k0 = r.kinds[0] || 'unclassified';
    primary.set(k0, (primary.get(k0) || []).concat([r]));
    for (const k of r.kinds) byKind.set(k, (byKind.get(k) || 0) + 1);
  }
  const actions = new Set(rows.map(r => r.exp.file));
  const actionsSame = [...actions].filter(f => rows.filter(r => r.exp.file === f).every(r => r.same)).length;
  console.log(`\nwasmwhisk vs the nodejs runtime: ${same} of ${total} cases match (${(100 * same / Math.max(1, total)).toFixed(1)}%); ${actionsSame} of ${actions.size} actions match in every case.\n`);
  console.log('differences by primary kind                               cases   (cases with this kind at all)');
  for (const k of KIND_ORDER.concat(['unclassified'])) {
    if (!primary.has(k) && !byKind.has(k)) continue;
    console.log(`  ${k.padEnd(58)}${String((primary.get(k) || []).length).padStart(5)}   (${byKind.get(k) || 0})`);
  }
  for (const k of KIND_ORDER.concat(['unclassified'])) {
    const list = primary.get(k);
    if (!list) continue;
    console.log(`\n## ${k} (${list.length})`);
    for (const r of list.slice(0, args.examples)) {
      console.log(`- ${r.exp.file}#${r.exp.case}${r.missing ? ` (missing: ${r.missing})` : ''}`);
      console.log(`    expected: ${r.exp.status}: ${short(r.exp.result)}`);
      console.log(`    wasmwhisk: ${r.act.status}: ${short(r.act.result)}${r.act.other.length ? ' | ' + short(r.act.other.join(' / '), 120) : ''}`);
      const el = Array.isArray(r.exp.logs) ? r.exp.logs : [];
      if (JSON.stringify(el) !== JSON.stringify(r.act.logs)) {
        console.log(`    logs expected: ${short(el.slice(0, 4))}`);
        console.log(`    logs wasmwhisk: ${short(r.act.logs.slice(0, 4))}`);
      }
    }
  }
  console.log(`\n${same} passed, ${total - same} failed`);
  if (args.json) {
    fs.writeFileSync(args.json, JSON.stringify(rows.map(r => ({
      file: r.exp.file, case: r.exp.case, same: r.same, kinds: r.kinds, missing: r.missing || undefined,
      expected: { status: r.exp.status, result: r.exp.result, logs: r.exp.logs },
      actual: { status: r.act.status, exit: r.act.exit, result: r.act.result, logs: r.act.logs, other: r.act.other },
    })), null, 1) + '\n');
  }
  process.exit(same === total ? 0 : 1);
}

main().catch(e => { console.error(`error: ${e.stack || e}`); process.exit(2); });
