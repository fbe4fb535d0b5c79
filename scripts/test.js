#!/usr/bin/env node
// `npm test`: the Rust unit tests, then the bun suite against the built addon.
//
// Builds the addon first when it is missing (a fresh clone whose install ran
// with --ignore-scripts), so this one command is enough on a new machine.
'use strict'
const { spawnSync } = require('node:child_process')
const fs = require('node:fs')
const path = require('node:path')

const root = path.resolve(__dirname, '..')

function step(title, cmd, argv, opts = {}) {
  console.log(`\n== ${title}: ${[cmd, ...argv].join(' ')}`)
  const r = spawnSync(cmd, argv, { cwd: root, stdio: 'inherit', ...opts })
  if (r.error) throw r.error
  if (r.status !== 0) {
    console.error(`\n${title} failed (exit ${r.status ?? r.signal})`)
    process.exit(r.status || 1)
  }
}

const built = fs.existsSync(path.join(root, 'index.js')) &&
  fs.readdirSync(root).some((f) => f.endsWith('.node'))
if (!built) step('build', process.execPath, ['scripts/build.js'])

step('cargo test', 'cargo', ['test', '--no-default-features'])

const bun = path.join(root, 'node_modules', '.bin', 'bun')
step('bun test', bun, ['test', './__test__', ...process.argv.slice(2)])

// Users are not root, CI is: the isolation suite again as an ordinary user.
if (process.getuid && process.getuid() === 0) {
  console.log('\nrunning as root: the isolation suite runs once more as an unprivileged user (scripts/test-unprivileged.sh)')
  step('isolation tests, unprivileged', 'sh', ['scripts/test-unprivileged.sh'])
}
