// The examples of the README, end to end through the CLI, as a user runs them.
import { describe, expect, test } from 'bun:test'
import { spawnSync } from 'node:child_process'
import { dirname, join, resolve } from 'node:path'

const root = resolve(import.meta.dir, '..')
const cli = join(root, 'bin/bun-sandbox.js')
// What `npm run sandbox` gives: the project's bin directory (bun) on PATH.
const PATH = [join(root, 'node_modules/.bin'), dirname(process.execPath), process.env.PATH].join(':')
const has = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`], { env: { ...process.env, PATH } }).status === 0

function sandbox(...args: string[]) {
  return spawnSync(process.execPath, [cli, ...args], { cwd: root, encoding: 'utf8', env: { ...process.env, PATH, NO_COLOR: '1' } })
}

describe('examples', () => {
  test('quickstart: the DEV server answers its TEST', () => {
    const r = sandbox('test', 'examples/quickstart')
    expect(r.stderr + r.stdout).toContain('1 passed, 0 failed')
    expect(r.status).toBe(0)
  }, 60_000)

  test('quickstart with --json: one event per line', () => {
    const r = sandbox('test', '--json', 'examples/quickstart')
    const events = r.stdout.trim().split('\n').map((l) => JSON.parse(l))
    expect(events.find((e) => e.type === 'tests')).toMatchObject({ passed: true, total: 1, failed: 0 })
    expect(r.status).toBe(0)
  }, 60_000)

  test.skipIf(!has('initdb') || !has('postgres') || !has('psql'))('postgres: a real server as a SERVICE, a TEST that queries it', () => {
    const r = sandbox('test', 'examples/postgres')
    expect(r.stderr + r.stdout).toContain('hello world')
    expect(r.stderr + r.stdout).toContain('1 passed, 0 failed')
    expect(r.status).toBe(0)
  }, 120_000)
})
