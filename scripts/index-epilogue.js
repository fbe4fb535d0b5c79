
// --- appended by scripts/build.js (scripts/index-epilogue.js) ---
// `IsolatedSandbox` is the same class as `Sandbox`: isolation is the default.
module.exports.IsolatedSandbox = module.exports.Sandbox
// `await using sb = new Sandbox(...)` stops the sandbox at the end of the scope.
const asyncDispose = Symbol.asyncDispose || Symbol.for('nodejs.asyncDispose')
module.exports.Sandbox.prototype[asyncDispose] = function () {
  return this.stop()
}

// `runSandbox(path, options)`: a Sandbox for the Sandboxfile at `path`, not
// started yet (the reference's meaning). WORKDIR resolves against the file's
// own directory unless `options.cwd` says otherwise.
module.exports.runSandbox = async function runSandbox(path, options = {}) {
  if (typeof path !== 'string') {
    const err = new TypeError('runSandbox(path): path must be a string')
    err.code = 'ERR_INVALID_ARG_TYPE'
    throw err
  }
  const { dirname, resolve } = require('node:path')
  const config = await module.exports.parseSandboxfileFromPath(path)
  return new module.exports.Sandbox(config, { cwd: dirname(resolve(path)), ...options })
}
