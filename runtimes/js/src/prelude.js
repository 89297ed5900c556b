// The JavaScript half of the runtime, evaluated once when the engine boots
// (so it is part of the pre-initialized snapshot).
//
// It is a function expression: `engine.rs` calls it with the native hooks and
// keeps the object it returns (the hooks Rust calls back into). Nothing here
// is reachable by name from the action except the Node-like globals it
// installs: `console`, `process`, `module`/`exports` and the timers.
//
// Every built-in used after boot is captured first, so an action that
// overwrites `JSON.stringify`, `Array.prototype.map` or `Promise` cannot break
// logging, error reporting or the timer loop.
(function (native) {
  'use strict';

  const stringify = JSON.stringify;
  const toStr = String;
  const objectToString = Object.prototype.toString;
  const toWellFormed = String.prototype.toWellFormed;
  const startsWith = String.prototype.startsWith;
  const trimEnd = String.prototype.trimEnd;
  const regexpTest = RegExp.prototype.test;
  const NumberCtor = Number;
  const trunc = Math.trunc;
  const defineProperty = Object.defineProperty;
  const now = Date.now;
  const PromiseCtor = Promise;
  const promiseResolve = Promise.resolve;
  const ErrorCtor = Error;
  const TypeErrorCtor = TypeError;
  const ReferenceErrorCtor = ReferenceError;
  const SyntaxErrorCtor = SyntaxError;
  const indirectEval = eval;
  const apply = Reflect.apply;
  const mapSet = Map.prototype.set;
  const mapDelete = Map.prototype.delete;
  const mapClear = Map.prototype.clear;
  const mapEntries = Map.prototype.entries;
  const iteratorNext = Object.getPrototypeOf(new Map().entries()).next;

  // Rust receives UTF-8: replace lone surrogates instead of failing.
  const wellFormed = (s) => apply(toWellFormed, s, []);

  const isError = (v) =>
    v instanceof ErrorCtor ||
    (v !== null && typeof v === 'object' && apply(objectToString, v, []) === '[object Error]');

  // `Error: message` followed by the stack frames, like Node prints it.
  const describeError = (e) => {
    let head;
    try {
      head = toStr(e.name) + ': ' + toStr(e.message);
    } catch (_) {
      head = 'Error';
    }
    let stack = '';
    try {
      if (typeof e.stack === 'string') stack = e.stack;
    } catch (_) {}
    // QuickJS's `stack` holds only the frames; tolerate a V8-style header too.
    const frames = apply(trimEnd, stack, []);
    if (apply(startsWith, frames, [head])) return frames;
    return frames === '' ? head : head + '\n' + frames;
  };

  // A console argument: strings as they are, errors with their stack,
  // everything else as JSON, or `String(x)` when it has no JSON form
  // (undefined, functions, symbols, BigInts, cycles, throwing toJSON).
  const formatValue = (v) => {
    if (typeof v === 'string') return v;
    if (isError(v)) return describeError(v);
    if (typeof v !== 'function') {
      try {
        const json = stringify(v);
        if (json !== undefined) return json;
      } catch (_) {}
    }
    try {
      return toStr(v);
    } catch (_) {
      try {
        return apply(objectToString, v, []);
      } catch (_) {
        return '[unprintable]';
      }
    }
  };

  const formatLine = (args) => {
    let line = '';
    for (let i = 0; i < args.length; i++) {
      if (i > 0) line += ' ';
      line += formatValue(args[i]);
    }
    return wellFormed(line);
  };

  const toStdout = function (...args) {
    native.stdout(formatLine(args));
  };
  const toStderr = function (...args) {
    native.stderr(formatLine(args));
  };
  globalThis.console = {
    log: toStdout,
    info: toStdout,
    debug: toStdout,
    trace: toStdout,
    warn: toStderr,
    error: toStderr,
  };

  // Seeded per instance from WASI random by `init` (see random.rs): the one
  // QuickJS ships would replay the snapshot's sequence in every instance.
  defineProperty(Math, 'random', {
    value: native.random,
    writable: true,
    enumerable: false,
    configurable: true,
  });

  // Node's `process`, reduced to what actions use: the environment.
  globalThis.process = { env: {} };

  // CommonJS entry points: `module.exports = main` or `exports.main = main`.
  globalThis.module = { exports: {} };
  globalThis.exports = globalThis.module.exports;

  // Timers. There is no event loop: `run` waits for the due timers only while
  // the action's promise is pending (the host's deadline bounds the wait).
  // They belong to the activation that armed them: when it ends, `run`
  // cancels every timer left (`clearTimers`), so none fires in the next one.
  const timers = new Map();
  let lastTimerId = 0;

  const delayOf = (ms) => {
    const n = NumberCtor(ms);
    // Node: a delay outside [1, 2^31 - 1] (or NaN) becomes 1.
    return n >= 1 && n <= 2147483647 ? trunc(n) : 1;
  };

  const schedule = (fn, delay, args, repeat) => {
    if (typeof fn !== 'function') {
      throw new TypeErrorCtor('The "callback" argument must be of type function');
    }
    const id = ++lastTimerId;
    const interval = repeat ? delayOf(delay) : 0;
    apply(mapSet, timers, [id, { due: now() + delayOf(delay), fn, args, interval }]);
    return id;
  };
  const cancel = (id) => {
    apply(mapDelete, timers, [id]);
  };

  globalThis.setTimeout = (fn, delay, ...args) => schedule(fn, delay, args, false);
  globalThis.setInterval = (fn, delay, ...args) => schedule(fn, delay, args, true);
  globalThis.setImmediate = (fn, ...args) => schedule(fn, 0, args, false);
  globalThis.clearTimeout = cancel;
  globalThis.clearInterval = cancel;
  globalThis.clearImmediate = cancel;

  // The timer due first (insertion order breaks ties), or undefined.
  const earliest = () => {
    let best;
    const it = apply(mapEntries, timers, []);
    for (;;) {
      const step = apply(iteratorNext, it, []);
      if (step.done) return best;
      const id = step.value[0];
      const t = step.value[1];
      if (best === undefined || t.due < best.t.due) best = { id, t };
    }
  };

  const identifier = /^[A-Za-z_$][A-Za-z0-9_$]*$/;
  const isIdentifier = (name) => apply(regexpTest, identifier, [name]);

  // Hooks called by Rust.
  return {
    describe(e) {
      if (isError(e)) return wellFormed(describeError(e));
      return formatLine([e]);
    },

    // The action's entry point, as OpenWhisk's Node.js runtime finds it:
    // the global binding `name` (a `function`, `var`, `let` or `const`),
    // else `module.exports[name]`, `exports[name]`, or `module.exports`
    // itself when it is a function.
    resolveEntry(name) {
      const candidates = [];
      if (isIdentifier(name)) {
        try {
          candidates.push(indirectEval(name));
        } catch (e) {
          if (!(e instanceof ReferenceErrorCtor || e instanceof SyntaxErrorCtor)) throw e;
        }
      } else {
        candidates.push(globalThis[name]);
      }
      const m = globalThis.module;
      const moduleExports = m !== null && typeof m === 'object' ? m.exports : undefined;
      const ex = globalThis.exports;
      if (moduleExports != null) candidates.push(moduleExports[name]);
      if (ex != null) candidates.push(ex[name]);
      candidates.push(moduleExports);
      for (let i = 0; i < candidates.length; i++) {
        if (typeof candidates[i] === 'function') return candidates[i];
      }
      return undefined;
    },

    // Sets (or, for undefined, deletes) `process.env[name]`. An action that
    // replaced `process` or froze its `env` only loses the variables.
    setEnv(name, value) {
      try {
        const env = globalThis.process.env;
        if (env === null || (typeof env !== 'object' && typeof env !== 'function')) return;
        if (value === undefined) {
          delete env[name];
        } else {
          env[name] = value;
        }
      } catch (_) {}
    },

    // A real promise for a thenable (or undefined for anything else).
    toPromise(v) {
      if (v instanceof PromiseCtor) return v;
      if (v !== null && (typeof v === 'object' || typeof v === 'function')) {
        const then = v.then;
        if (typeof then === 'function') return apply(promiseResolve, PromiseCtor, [v]);
      }
      return undefined;
    },

    // Milliseconds until the next timer is due (0 if overdue), -1 if none.
    nextTimerDelay() {
      const next = earliest();
      if (next === undefined) return -1;
      const wait = next.t.due - now();
      return wait > 0 ? wait : 0;
    },

    // Cancels every pending timer (the activation that armed them ended).
    clearTimers() {
      apply(mapClear, timers, []);
    },

    // Runs the timer due first. A callback that throws fails the activation
    // (in Node.js it would crash the process).
    fireTimer() {
      const next = earliest();
      if (next === undefined) return;
      const id = next.id;
      const t = next.t;
      if (t.interval > 0) {
        t.due = now() + t.interval;
      } else {
        apply(mapDelete, timers, [id]);
      }
      apply(t.fn, undefined, t.args);
    },
  };
});
