// -w/--watch: call onChange (debounced) when a file under dir changes.
'use strict'
const fs = require('node:fs')

const IGNORED = /(^|[\\/])(node_modules|\.git)([\\/]|$)/
const DEBOUNCE_MS = 200

/** Returns a function that stops watching. */
function watchDir(dir, reporter, onChange) {
  let timer = null
  const listener = (_event, file) => {
    if (file && IGNORED.test(String(file))) return
    clearTimeout(timer)
    timer = setTimeout(() => onChange(file), DEBOUNCE_MS)
  }
  let watcher
  try {
    watcher = fs.watch(dir, { recursive: true }, listener)
  } catch (err) {
    // Node 18 on Linux has no recursive fs.watch: watch the top level only.
    reporter.info(`watching only the top level of ${dir} (${err.code || err.message})`)
    watcher = fs.watch(dir, listener)
  }
  return () => {
    clearTimeout(timer)
    watcher.close()
  }
}

module.exports = { watchDir }
