#!/usr/bin/env node
// Makes the two npm tarballs a release publishes: `bun-sandbox` and its
// platform package for this machine.
//
//   node scripts/pack.js [OUT_DIR]   (default: ./dist)
//
// The platform package gets the release binaries (scripts/build.js
// --release-package). The root package is packed from a staging copy whose
// package.json names the platform package as an optional dependency at the same
// version, as napi-rs projects publish it; the checkout's package.json does not
// carry that entry, because the platform package is not on any registry until a
// release publishes it.
'use strict'
const { spawnSync } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')

const root = path.resolve(__dirname, '..')
const out = path.resolve(process.argv[2] || path.join(root, 'dist'))
const platform = `${process.platform}-${process.arch}-gnu`

function run(cmd, argv, cwd) {
  const r = spawnSync(cmd, argv, { cwd, stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8' })
  if (r.error) throw r.error
  if (r.status !== 0) throw new Error(`${cmd} ${argv.join(' ')} failed with exit ${r.status}`)
  return r.stdout
}

function npmPack(dir) {
  const json = JSON.parse(run('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', out], dir))
  return path.join(out, json[0].filename)
}

if (!process.argv.includes('--no-build')) {
  run(process.execPath, [path.join(root, 'scripts/build.js'), '--release-package'], root)
}
fs.mkdirSync(out, { recursive: true })

const platformDir = path.join(root, 'npm', platform)
const platformTarball = npmPack(platformDir)

const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'))
const stage = fs.mkdtempSync(path.join(os.tmpdir(), 'bun-sandbox-stage-'))
try {
  for (const f of [...pkg.files, 'README.md']) {
    const from = path.join(root, f)
    if (fs.existsSync(from)) fs.cpSync(from, path.join(stage, f), { recursive: true })
  }
  const platformPkg = JSON.parse(fs.readFileSync(path.join(platformDir, 'package.json'), 'utf8'))
  pkg.optionalDependencies = { [platformPkg.name]: pkg.version }
  delete pkg.scripts
  delete pkg.devDependencies
  fs.writeFileSync(path.join(stage, 'package.json'), JSON.stringify(pkg, null, 2) + '\n')
  const rootTarball = npmPack(stage)
  console.log(JSON.stringify({ root: rootTarball, platform: platformTarball }))
} finally {
  fs.rmSync(stage, { recursive: true, force: true })
}
