// Shared by record.js and compare.js: OpenWhisk's fixed activation metadata,
// status names, and the normalization applied to results and logs on both
// sides before they are stored or compared. Node built-ins only.
'use strict';

const crypto = require('crypto');

/** The activation metadata the recorder sends (compare.js maps wasmwhisk's own values onto these). */
const META = {
  namespace: 'guest',
  actionVersion: '0.0.1',
  activationId: 'c0ffee00c0ffee00c0ffee00c0ffee00',
  transactionId: 'compat-recorder-transaction-0001',
  apiHost: 'http://127.0.0.1:3233',
};

/** OpenWhisk's statuses (ActivationResponse codes and their REST names). */
const STATUS = ['success', 'application error', 'action developer error', 'whisk internal error'];

/** OpenWhisk's payload limit (whisk.activation.payload.max = 1 m). */
const MAX_RESPONSE = 1048576;

/** Strings longer than this are stored as their length, sha256 and head. */
const LONG_STRING = 4096;

const SENTINEL = 'XXX_THE_END_OF_A_WHISK_ACTIVATION_XXX';

const MSG = {
  abnormalInit: 'The action did not initialize and exited unexpectedly.',
  abnormalRun: 'The action did not produce a valid response and exited unexpectedly.',
  logWarningDeveloperError: 'The action did not initialize or run as expected. Log data might be missing.',
  logFailure: 'There was an issue while collecting your logs. Data might be missing.',
  timeout: (ms, init) => `The action exceeded its time limits of ${ms} milliseconds${init ? ' during initialization.' : '.'}`,
  invalidInit: s => 'The action failed during initialization' + (s ? `: ${s}` : ''),
  invalidRun: s => 'The action did not produce a valid JSON or JSON Array response' + (s ? `: ${s}` : ''),
  truncated: (len, trunk) => `The action produced a response that exceeded the allowed length: ${len} > ${MAX_RESPONSE} bytes. The truncated response was: ${trunk}`,
};

function escapeRegExp(s) { return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'); }

/**
 * A text normalizer: replaces the given literal values (paths, ids) with
 * placeholders, and Node's "(node:PID)" warning prefix with "(node:<pid>)".
 */
function textNormalizer(replacements) {
  const pairs = replacements
    .filter(([from]) => from)
    .sort((a, b) => b[0].length - a[0].length)
    .map(([from, to]) => [new RegExp(escapeRegExp(from), 'g'), to]);
  return text => {
    let t = text;
    for (const [re, to] of pairs) t = t.replace(re, to);
    return t.replace(/\(node:\d+\)/g, '(node:<pid>)');
  };
}

/** Long strings become {"$long_string": {length, sha256, head}} so that expected.json stays small. */
function shrinkString(s) {
  if (s.length <= LONG_STRING) return s;
  return { $long_string: { length: s.length, sha256: crypto.createHash('sha256').update(s).digest('hex'), head: s.slice(0, 120) } };
}

/** Deep copy of a JSON value with every string normalized and shrunk; key order kept. */
function normalizeValue(value, norm) {
  if (typeof value === 'string') return shrinkString(norm(value));
  if (Array.isArray(value)) return value.map(v => normalizeValue(v, norm));
  if (value && typeof value === 'object') {
    const out = {};
    for (const [k, v] of Object.entries(value)) out[norm(k)] = normalizeValue(v, norm);
    return out;
  }
  return value;
}

/** JSON paths at which two values differ ("" = the whole value). Key order is ignored. */
function diffPaths(a, b, at = '', out = []) {
  if (a === b) return out;
  const ta = Array.isArray(a) ? 'array' : a === null ? 'null' : typeof a;
  const tb = Array.isArray(b) ? 'array' : b === null ? 'null' : typeof b;
  if (ta !== tb || (ta !== 'object' && ta !== 'array')) { out.push(at || '.'); return out; }
  if (ta === 'array') {
    if (a.length !== b.length) { out.push(at || '.'); return out; }
    a.forEach((v, i) => diffPaths(v, b[i], `${at}[${i}]`, out));
    return out;
  }
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  for (const k of keys) {
    const p = /^[A-Za-z_$][\w$]*$/.test(k) ? `${at}.${k}` : `${at}[${JSON.stringify(k)}]`;
    if (!(k in a) || !(k in b)) out.push(p); else diffPaths(a[k], b[k], p, out);
  }
  return out;
}

/** True when two JSON values are equal and their objects list their keys in the same order. */
function sameOrder(a, b) {
  if (Array.isArray(a)) return a.every((v, i) => sameOrder(v, b[i]));
  if (a && typeof a === 'object') {
    const ka = Object.keys(a), kb = Object.keys(b || {});
    return ka.length === kb.length && ka.every((k, i) => k === kb[i] && sameOrder(a[k], b[k]));
  }
  return true;
}

module.exports = { META, STATUS, MAX_RESPONSE, LONG_STRING, SENTINEL, MSG, textNormalizer, normalizeValue, shrinkString, diffPaths, sameOrder };
