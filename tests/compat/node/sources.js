#!/usr/bin/env node
// Materializes the third-party action sources named by corpus.json.
//
// The repository keeps only the manifest (repository, path, commit, licence,
// cases); the actions themselves are other people's code and are never
// committed here. This script reads each one from a local git copy of its
// public repository, at the pinned commit, and writes it where record.js and
// compare.js look for it (default: tests/compat/node/actions/, which is
// git-ignored):
//
//   node tests/compat/node/sources.js --mirrors DIR [--out DIR] [--corpus FILE]
//
// DIR holds one git directory per repository, found as the first of
//   DIR/<owner>+<name>/repo/.git, DIR/<owner>+<name>/repo, DIR/<owner>+<name>,
//   DIR/<owner>/<name>/.git, DIR/<owner>/<name>.git, DIR/<owner>/<name>
// (bare or not; full history is needed for the few files pinned at old commits).
//
// Each action is checked against the sha256 recorded in corpus.json.
// Node built-ins only.
'use strict';

const fs = require('fs');
const os = require('os');
const path = require('path');
const crypto = require('crypto');
const cp = require('child_process');

const HERE = __dirname;

/** The JavaScript text of an action from the text of the file that holds it. */
function extractSource(text, extract) {
  if (!extract) return text;
  if (extract.kind !== 'scala-string') throw new Error(`unknown extract kind ${extract.kind}`);
  // A Scala test's """...""".stripMargin string literal, located by the
  // 1-based inclusive line range that contains its two delimiters.
  const [from, to] = extract.lines;
  const region = text.split('\n').slice(from - 1, to).join('\n');
  const open = region.indexOf('"""');
  const close = region.lastIndexOf('"""');
  if (open < 0 || close <= open) throw new Error(`no """ string in lines ${from}-${to}`);
  let inner = region.slice(open + 3, close);
  // scala.collection.StringOps.stripMargin: drop leading blanks/control characters followed by '|'.
  inner = inner.split('\n').map(line => line.replace(/^[\x00-\x20]*\|/, '')).join('\n');
  return extract.trim ? inner.trim() : inner;
}

/** sha256 of a file, or of a folder's sorted (relative path, content) pairs. */
function hashPath(p) {
  const h = crypto.createHash('sha256');
  const st = fs.statSync(p);
  if (st.isFile()) return h.update(fs.readFileSync(p)).digest('hex');
  const files = [];
  (function walk(dir, rel) {
    for (const name of fs.readdirSync(dir).sort()) {
      const full = path.join(dir, name);
      const r = rel ? rel + '/' + name : name;
      if (fs.statSync(full).isDirectory()) walk(full, r); else files.push([r, full]);
    }
  })(p, '');
  for (const [rel, full] of files) { h.update(rel + '\0'); h.update(fs.readFileSync(full)); h.update('\0'); }
  return h.digest('hex');
}

function findGitDir(mirrors, repo) {
  const [owner, name] = repo.split('/');
  const candidates = [
    path.join(mirrors, `${owner}+${name}`, 'repo', '.git'),
    path.join(mirrors, `${owner}+${name}`, 'repo'),
    path.join(mirrors, `${owner}+${name}`),
    path.join(mirrors, owner, name, '.git'),
    path.join(mirrors, owner, `${name}.git`),
    path.join(mirrors, owner, name),
  ];
  for (const c of candidates) {
    if (fs.existsSync(path.join(c, 'HEAD')) && fs.existsSync(path.join(c, 'objects'))) return c;
  }
  return null;
}

function git(gitDir, args, opts = {}) {
  return cp.execFileSync('git', ['--git-dir=' + gitDir, ...args], Object.assign({ maxBuffer: 1 << 28 }, opts));
}

/** Writes one action to out/<action.file>; returns its sha256. */
function materializeOne(action, gitDir, out) {
  const dest = path.join(out, action.file);
  fs.mkdirSync(path.dirname(dest), { recursive: true });
  fs.rmSync(dest, { recursive: true, force: true });
  if (action.binary) {
    // A folder (zip action): export it with git archive, then move it in place.
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'compat-src-'));
    const tar = git(gitDir, ['archive', '--format=tar', action.commit, action.path], { stdio: ['ignore', 'pipe', 'ignore'] });
    cp.execFileSync('tar', ['-x', '-C', tmp], { input: tar });
    fs.renameSync(path.join(tmp, action.path), dest);
    fs.rmSync(tmp, { recursive: true, force: true });
  } else {
    const text = git(gitDir, ['show', `${action.commit}:${action.path}`]).toString('utf8');
    fs.writeFileSync(dest, extractSource(text, action.extract));
  }
  return hashPath(dest);
}

function parseArgs(argv) {
  const args = { corpus: path.join(HERE, 'corpus.json'), out: path.join(HERE, 'actions'), mirrors: null };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--mirrors') args.mirrors = argv[++i];
    else if (a === '--out') args.out = argv[++i];
    else if (a === '--corpus') args.corpus = argv[++i];
    else if (a === '-h' || a === '--help') { args.help = true; }
    else throw new Error(`unknown argument ${a}`);
  }
  return args;
}

function main() {
  const args = parseArgs(process.argv.slice(2));
  if (args.help || !args.mirrors) {
    console.log('usage: node sources.js --mirrors DIR [--out DIR] [--corpus FILE]');
    process.exit(args.help ? 0 : 2);
  }
  const corpus = JSON.parse(fs.readFileSync(args.corpus, 'utf8'));
  let ok = 0, bad = 0, missing = 0;
  const done = new Set();
  for (const action of corpus.actions) {
    if (done.has(action.file)) continue;
    done.add(action.file);
    const gitDir = findGitDir(args.mirrors, action.repo);
    if (!gitDir) { console.error(`missing repository ${action.repo} for ${action.file}`); missing++; continue; }
    try {
      const sha = materializeOne(action, gitDir, args.out);
      if (action.sha256 && sha !== action.sha256) {
        console.error(`${action.file}: sha256 ${sha} differs from corpus.json's ${action.sha256}`);
        bad++;
      } else ok++;
    } catch (e) {
      console.error(`${action.file}: ${e.message.split('\n')[0]}`);
      bad++;
    }
  }
  console.log(`${ok} actions written to ${args.out}; ${bad} failed or differ; ${missing} without a repository`);
  process.exit(bad || missing ? 1 : 0);
}

module.exports = { extractSource, hashPath, findGitDir, materializeOne };

if (require.main === module) main();
