// LOGS (getLogFiles, tailLogs) and WATCH= restarts (SPEC §1.2, §2) against
// real sandboxes.
//
// Synchronisation is by events and bounded polling only: `until()` polls a
// condition every 10 ms up to a deadline. The only plain timer is
// `observe()`, a window after which something must NOT have happened, or
// over which restarts are counted (nothing is waited for through it).
import { describe, expect, test } from 'bun:test'
import { mkdirSync, mkdtempSync, readFileSync, realpathSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { Sandbox } from '..'
import { Recorder, observe, sandboxes, sf, until } from './support'

// ---------------------------------------------------------------- helpers

/** A fresh project directory holding `files` (paths may have directories). */
function project(files: Record<string, string> = {}): string {
  const dir = realpathSync(mkdtempSync(join(tmpdir(), 'bun-sandbox-watch-logs-')))
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, name)), { recursive: true })
    writeFileSync(join(dir, name), text)
  }
  return dir
}

const sandbox = sandboxes(project)

function pidOf(sb: Sandbox, name: string): number | undefined {
  return sb.getStatus().find((p) => p.name === name)?.pid
}

async function answers(url: string): Promise<string | null> {
  try {
    const r = await fetch(url)
    return await r.text()
  } catch {
    return null
  }
}

/** `node server.js PORT`: answers "ok <n>" where n counts its starts (in starts.txt). */
const SERVER_JS = `
const fs = require('fs')
fs.appendFileSync('starts.txt', 'x')
const n = fs.readFileSync('starts.txt', 'utf8').length
require('http').createServer((q, r) => r.end('ok ' + n)).listen(Number(process.argv[2]), '127.0.0.1')
console.log('listening')
`

// ---------------------------------------------------------------- LOGS

describe('getLogFiles', () => {
  test('before the sandbox: WORKDIR; after it wrote: its own view', async () => {
    const dir = project({
      'logs/host.log': 'old\n',
      'logs/del.log': 'to delete\n',
      'logs/sub/deep.log': 'not matched by logs/*\n',
      'other.log': 'not a log\n',
    })
    const sb = sandbox(sf({ logs: ['logs/*'] }), { cwd: dir })
    expect(sb.getLogFiles()).toEqual([join(dir, 'logs/del.log'), join(dir, 'logs/host.log')])

    const r = await sb.exec('echo new >> logs/app.log && echo more >> logs/host.log && rm logs/del.log')
    expect(r.exitCode).toBe(0)
    const files = sb.getLogFiles()
    expect(files).toHaveLength(2)
    const [app, host] = files
    // Written inside: read from the sandbox's changes, not the project.
    expect(app.endsWith('/logs/app.log')).toBe(true)
    expect(host.endsWith('/logs/host.log')).toBe(true)
    expect(app.startsWith(dir + '/')).toBe(false)
    expect(host.startsWith(dir + '/')).toBe(false)
    expect(readFileSync(app, 'utf8')).toBe('new\n')
    expect(readFileSync(host, 'utf8')).toBe('old\nmore\n')
    // The host's own files are untouched.
    expect(readFileSync(join(dir, 'logs/host.log'), 'utf8')).toBe('old\n')
    expect(readFileSync(join(dir, 'logs/del.log'), 'utf8')).toBe('to delete\n')
  })

  test('no LOGS: no files', () => {
    const dir = project({ 'logs/a.log': 'x\n' })
    expect(sandbox(sf({}), { cwd: dir }).getLogFiles()).toEqual([])
  })
})

describe('tailLogs', () => {
  test('lines written inside, a file created after the call, and the stop function', async () => {
    const dir = project({ 'logs/pre.log': 'before the call\n' })
    const writer = 'i=0; while true; do i=$((i+1)); echo "line $i" >> logs/app.log; sleep 0.02; done'
    const sb = sandbox(sf({ logs: ['logs/*'], services: [{ name: 'writer', command: writer }] }), { cwd: dir })
    await sb.startServices()
    const got: [string, string][] = []
    const stopTail = await sb.tailLogs((file, line) => void got.push([file, line]))
    expect(typeof stopTail).toBe('function')

    const app = () => got.filter(([f]) => f === 'logs/app.log').map(([, l]) => l)
    await until(() => app().length >= 10, '10 lines of logs/app.log')
    // Whole lines, in order, none skipped.
    const numbers = app().map((l) => {
      expect(l).toMatch(/^line \d+$/)
      return Number(l.slice(5))
    })
    for (let i = 1; i < numbers.length; i++) expect(numbers[i]).toBe(numbers[i - 1] + 1)

    // A file that did not exist at the call, and one that did: only new lines.
    await sb.exec('echo late-1 > logs/late.log; echo late-2 >> logs/late.log; echo after >> logs/pre.log')
    await until(() => got.filter(([f]) => f === 'logs/late.log').length === 2, 'both lines of logs/late.log')
    expect(got.filter(([f]) => f === 'logs/late.log').map(([, l]) => l)).toEqual(['late-1', 'late-2'])
    await until(() => got.some(([f]) => f === 'logs/pre.log'), 'the new line of logs/pre.log')
    expect(got.filter(([f]) => f === 'logs/pre.log').map(([, l]) => l)).toEqual(['after'])

    // A partial line waits for its newline.
    await sb.exec("printf 'half' >> logs/part.log")
    await sb.exec("printf ' and half\\nnext' >> logs/part.log")
    await until(() => got.some(([f]) => f === 'logs/part.log'), 'the line of logs/part.log')
    expect(got.filter(([f]) => f === 'logs/part.log').map(([, l]) => l)).toEqual(['half and half'])

    stopTail()
    const count = got.length
    await observe(300)
    expect(got.length).toBe(count)
    stopTail() // idempotent
  })

  test('stop() of the sandbox stops every tail; a throwing callback does not stop it', async () => {
    const writer = 'mkdir -p logs; i=0; while true; do i=$((i+1)); echo "w $i" >> logs/w.log; sleep 0.02; done'
    const sb = sandbox(sf({ logs: ['logs/'], services: [{ name: 'writer', command: writer }] }))
    await sb.startServices()
    const a: string[] = []
    const b: string[] = []
    let thrown = 0
    await sb.tailLogs((_f, line) => void a.push(line))
    await sb.tailLogs((_f, line) => {
      b.push(line)
      if (b.length <= 2) {
        thrown++
        throw new Error('callback failure')
      }
    })
    await until(() => a.length >= 5 && b.length >= 5, 'lines in both tails')
    expect(thrown).toBe(2)
    await sb.stop()
    const [na, nb] = [a.length, b.length]
    await observe(300)
    expect([a.length, b.length]).toEqual([na, nb])
  })

  test('bad arguments', async () => {
    const sb = sandbox(sf({ logs: ['logs/*'] }))
    expect(() => sb.tailLogs('nope' as any)).toThrow(/cb must be a function/)
  })
})

// ---------------------------------------------------------------- WATCH

describe('WATCH', () => {
  test('a change on the host restarts DEV; the published URL keeps working', async () => {
    const dir = project({ 'server.js': SERVER_JS, 'src/app.ts': 'v1\n', 'other.txt': '' })
    const rec = new Recorder()
    const sb = sandbox(sf({ dev: { command: 'node server.js 3000', port: 3000, watch: 'src/**' } }), { cwd: dir, ...rec.options })
    const dev = await sb.startDev()
    const url = sb.getServiceUrl('dev')!
    expect(await answers(url)).toBe('ok 1')

    // Not matched: nothing happens.
    writeFileSync(join(dir, 'other.txt'), 'changed')
    await observe(500)
    expect(pidOf(sb, 'dev')).toBe(dev!.pid)

    writeFileSync(join(dir, 'src/app.ts'), 'v2\n')
    await until(() => pidOf(sb, 'dev') !== undefined && pidOf(sb, 'dev') !== dev!.pid, 'a new dev pid')
    expect(rec.stderr('dev')).toContain('bun-sandbox: src/app.ts changed; restarting dev\n')
    await until(async () => (await answers(url)) === 'ok 2', 'the restarted server on the same URL')
    expect(rec.exits('dev')).toHaveLength(1) // the old one, killed
    expect(rec.count('dev', 'listening')).toBe(2)
  })

  test('a change inside the sandbox restarts a SERVICE', async () => {
    const dir = project({ 'server.js': SERVER_JS, 'src/worker/job.ts': 'v1\n' })
    const rec = new Recorder()
    const config = sf({ services: [{ name: 'api', command: 'node server.js 4000', port: 4000, watch: 'src/worker/**' }] })
    const sb = sandbox(config, { cwd: dir, ...rec.options })
    await sb.startServices()
    const first = pidOf(sb, 'api')!
    expect(first).toBeGreaterThan(0)
    const url = sb.getServiceUrl('api')!

    // A new file in a directory that exists only inside the sandbox.
    expect((await sb.exec('mkdir -p src/worker/new && echo x > src/worker/new/file.ts')).exitCode).toBe(0)
    await until(() => pidOf(sb, 'api') !== undefined && pidOf(sb, 'api') !== first, 'a new api pid')
    expect(rec.stderr('api')).toMatch(/bun-sandbox: src\/worker\/new(\/file\.ts)? (and 1 other file )?changed; restarting api\n/)
    await until(async () => (await answers(url)) === 'ok 2', 'the restarted api')

    // The sandbox touches a file the project has (copy-up), through a TEST-like exec.
    const second = pidOf(sb, 'api')!
    expect((await sb.exec('touch src/worker/job.ts')).exitCode).toBe(0)
    await until(() => pidOf(sb, 'api') !== undefined && pidOf(sb, 'api') !== second, 'a third api pid')
    expect(rec.stderr('api')).toContain('bun-sandbox: src/worker/job.ts changed; restarting api\n')
    await until(async () => (await answers(url)) === 'ok 3', 'the api again')
    // The project on the host is untouched.
    expect(readFileSync(join(dir, 'src/worker/job.ts'), 'utf8')).toBe('v1\n')
  })

  test('a process that keeps changing its watched files and crashing is backed off, not spun', async () => {
    const rec = new Recorder()
    // It changes a watched file and exits at once, each time it starts.
    const looper = 'echo started; sleep 0.1; date +%s%N >> src/stamp; exit 1'
    const crasher = 'echo started; sleep 0.1; exit 3'
    const config = sf({
      services: [
        { name: 'looper', command: looper, watch: 'src/**' },
        { name: 'crasher', command: crasher, watch: 'lib/**' },
      ],
    })
    const sb = sandbox(config, { cwd: project({ 'src/a.ts': '', 'lib/b.ts': '' }), ...rec.options })
    await sb.startServices()
    await until(() => rec.count('looper', 'started') >= 1, 'the first start')
    await observe(3000)
    const starts = rec.count('looper', 'started')
    if (starts < 2 || starts > 6) console.error(`looper started ${starts} times:\n${rec.stderr('looper')}`)
    // Without back-off: a start every ~0.3 s (10+); with it 0.2, 0.4, 0.8 s... waits: about 4.
    expect(starts).toBeGreaterThanOrEqual(2)
    expect(starts).toBeLessThanOrEqual(6)
    expect(rec.stderr('looper')).toMatch(/restarting looper in \d+ ms/)
    // A crash alone is not a reason to restart: reported once, never restarted.
    expect(rec.count('crasher', 'started')).toBe(1)
    expect(rec.exits('crasher')).toEqual([3])
    expect(rec.stderr('crasher')).toBe('')
  })

  test('stop() ends the watcher', async () => {
    const dir = project({ 'src/a.ts': '' })
    const rec = new Recorder()
    const sb = sandbox(sf({ services: [{ name: 'w', command: 'echo started; sleep 60', watch: 'src/**' }] }), { cwd: dir, ...rec.options })
    await sb.startServices()
    await until(() => rec.count('w', 'started') === 1, 'the start')
    await sb.stop()
    writeFileSync(join(dir, 'src/a.ts'), 'changed')
    await observe(600)
    expect(rec.count('w', 'started')).toBe(1)
    expect(rec.stderr('w')).toBe('')
    expect(sb.getStatus()).toEqual([])
  })
})
