
// --- appended by scripts/build.js (scripts/index-epilogue.js) ---
// `IsolatedSandbox` is the same class as `Sandbox`: isolation is the default.
module.exports.IsolatedSandbox = module.exports.Sandbox
