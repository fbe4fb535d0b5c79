
// --- appended by scripts/build.js (scripts/index-epilogue.js) ---
// `IsolatedSandbox` is the same class as `Sandbox`: isolation is the default.
module.exports.IsolatedSandbox = module.exports.Sandbox
// `await using sb = new Sandbox(...)` stops the sandbox at the end of the scope.
const asyncDispose = Symbol.asyncDispose || Symbol.for('nodejs.asyncDispose')
module.exports.Sandbox.prototype[asyncDispose] = function () {
  return this.stop()
}
