#!/usr/bin/env node
// Builds the addon and the init helper from source.
//
//   node scripts/build.js                   release build; writes index.js, index.d.ts and
//                                           bun-sandbox.<platform>.node at the top level
//   node scripts/build.js --debug           the same, unoptimised (faster to compile)
//   node scripts/build.js --release-package also copies the binaries into npm/<platform>/
//
// `npm install` in a checkout runs this through the `prepare` script.
'use strict'
const { spawnSync } = require('node:child_process')
const fs = require('node:fs')
const path = require('node:path')

const root = path.resolve(__dirname, '..')
const args = new Set(process.argv.slice(2))
const release = !args.has('--debug')
const profile = release ? 'release' : 'debug'

function run(cmd, argv) {
  const r = spawnSync(cmd, argv, { cwd: root, stdio: 'inherit' })
  if (r.error) {
    console.error(`bun-sandbox build: cannot run ${cmd}: ${r.error.message}`)
    if (r.error.code === 'ENOENT' && cmd === 'cargo') {
      console.error('Building from a checkout needs a Rust toolchain (cargo) on PATH.')
    }
    process.exit(1)
  }
  if (r.status !== 0) process.exit(r.status ?? 1)
}

const napiCli = path.join(path.dirname(require.resolve('@napi-rs/cli/package.json', { paths: [root] })), 'dist/cli.js')
const header = fs.readFileSync(path.join(root, 'scripts/types-header.d.ts'), 'utf8')
run(process.execPath, [
  napiCli, 'build', '--platform', ...(release ? ['--release'] : []),
  '--js', 'index.js', '--dts', 'index.d.ts', '--dts-header', header,
])
const epilogue = fs.readFileSync(path.join(root, 'scripts/index-epilogue.js'), 'utf8')
fs.appendFileSync(path.join(root, 'index.js'), epilogue)

// The init helper links no napi symbol: built without the `binding` feature,
// and linked statically: it starts faster with no shared library to load,
// and each sandbox's two init processes keep less memory resident.
run('cargo', [
  'rustc', '--bin', 'bun-sandbox-init', '--no-default-features', '--features', 'init', ...(release ? ['--release'] : []),
  '--', '-C', 'target-feature=+crt-static',
])

if (args.has('--release-package')) {
  const platform = `${process.platform}-${process.arch}-gnu`
  const dir = path.join(root, 'npm', platform)
  if (!fs.existsSync(path.join(dir, 'package.json'))) {
    console.error(`bun-sandbox build: no platform package in npm/${platform}`)
    process.exit(1)
  }
  const node = `bun-sandbox.${platform}.node`
  fs.copyFileSync(path.join(root, node), path.join(dir, node))
  const init = path.join(dir, 'bun-sandbox-init')
  fs.copyFileSync(path.join(root, 'target', profile, 'bun-sandbox-init'), init)
  fs.chmodSync(init, 0o755)
  console.log(`bun-sandbox build: npm/${platform} holds ${node} and bun-sandbox-init`)
}
