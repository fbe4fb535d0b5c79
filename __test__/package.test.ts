// SPEC §6: the two tarballs a release publishes, installed together into an
// empty project on a PATH without a Rust toolchain, work from Node's require,
// from Node's and Bun's import, and as the `bun-sandbox` command.
import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'

const root = resolve(import.meta.dir, '..')
const pkg = require(join(root, 'package.json'))
const node = spawnSync('sh', ['-c', 'command -v node'], { encoding: 'utf8' }).stdout.trim()
const bun = process.execPath
let work = ''
// No cargo, rustc or rustup on this PATH: what a user without Rust has.
const PATH = [dirname(node), dirname(bun), '/usr/bin', '/bin'].join(':')

function sh(cmd: string, args: string[], cwd: string, env: Record<string, string> = {}) {
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8', env: { ...process.env, PATH, ...env } })
  if (r.error) throw r.error
  return r
}

beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'bun-sandbox-pack-'))
  const packed = spawnSync(process.execPath === node ? node : 'node', [join(root, 'scripts/pack.js'), join(work, 'dist')], {
    cwd: root,
    encoding: 'utf8',
  })
  if (packed.status !== 0) throw new Error(`pack failed: ${packed.stderr}`)
  const tarballs = JSON.parse(packed.stdout.trim().split('\n').pop()!)
  const app = join(work, 'app')
  spawnSync('mkdir', [app])
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }))
  const installed = sh('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', tarballs.root, tarballs.platform], app)
  if (installed.status !== 0) throw new Error(`npm install failed: ${installed.stderr}`)
}, 600_000)

afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true })
})

describe('installed from the release tarballs', () => {
  test('the PATH has no Rust toolchain', () => {
    expect(sh('sh', ['-c', 'command -v cargo || command -v rustc || echo none'], tmpdir()).stdout.trim()).toBe('none')
  })

  test('the init helper keeps its execute bit', () => {
    const init = join(work, 'app/node_modules/bun-sandbox-linux-x64-gnu/bun-sandbox-init')
    expect(statSync(init).mode & 0o111).toBe(0o111)
  })

  test("Node's require", () => {
    const src = "const b = require('bun-sandbox'); console.log(JSON.stringify(b.parseSandboxfile('FROM host\\nNET api.example.com')))"
    const r = sh(node, ['-e', src], join(work, 'app'))
    expect(r.stderr).toBe('')
    expect(JSON.parse(r.stdout)).toMatchObject({ from: 'host', net: ['api.example.com'] })
  })

  for (const [runtime, bin] of [['Node', () => node], ['Bun', () => bun]] as const) {
    test(`${runtime}'s import { Sandbox } from "bun-sandbox"`, () => {
      const file = join(work, 'app', `check-${runtime}.mjs`)
      writeFileSync(
        file,
        "import { Sandbox, parseSandboxfile, formatSandboxfile } from 'bun-sandbox'\n" +
          "console.log(typeof Sandbox, formatSandboxfile(parseSandboxfile('FROM host')).trim())\n",
      )
      const r = sh(bin(), [file], join(work, 'app'))
      expect(r.stdout.trim()).toBe('function FROM host')
      expect(r.status).toBe(0)
    })
  }

  test('the bun-sandbox command', () => {
    const r = sh(join(work, 'app/node_modules/.bin/bun-sandbox'), ['--version'], join(work, 'app'))
    expect(r.status).toBe(0)
    expect(r.stdout).toContain(pkg.version)
  })
})
