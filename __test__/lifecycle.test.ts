// The Sandbox lifecycle of SPEC §2 against real sandboxes: runSetup, runTests,
// startServices/startDev with readiness, published ports, onExit/getStatus/
// isRunning, stop(), callbacks (throwing, slow), large output, the host's
// event loop, and run().
//
// Synchronisation is by events and bounded polling only: `until()` polls a
// condition every 10 ms up to a deadline, `within()` bounds a promise. The
// only plain timer is `observe()`, an observation window after which
// something must NOT have happened (nothing is waited for through it).
import { describe, expect, test } from 'bun:test'
import { spawn, spawnSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { connect, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Sandbox } from '..'
import { Recorder, observe, sandboxes, sf, until } from './support'

const PKG = join(import.meta.dir, '..')

// ---------------------------------------------------------------- helpers

/** A fresh project directory holding `files`. */
function project(files: Record<string, string> = {}): string {
  const dir = mkdtempSync(join(tmpdir(), 'bun-sandbox-lifecycle-'))
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text)
  return dir
}

const sandbox = sandboxes(project)

/** `p`, or a rejection naming `what` if it has not settled after `ms`. */
function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout>
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: not settled within ${ms} ms`)), ms)
  })
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer))
}

/** How a promise settled. */
async function settle<T>(p: Promise<T>): Promise<{ ok: true; value: T } | { ok: false; error: any }> {
  try {
    return { ok: true, value: await p }
  } catch (error) {
    return { ok: false, error }
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

/** A TCP connection to the host's 127.0.0.1:port, reading into `data`, with how it ended. */
function tcp(port: number) {
  const sock: Socket = connect(port, '127.0.0.1')
  const state = { data: '', connected: false, ended: false, closed: false, error: null as Error | null, sock }
  sock.setEncoding('utf8')
  sock.on('connect', () => (state.connected = true))
  sock.on('data', (d: string) => (state.data += d))
  sock.on('end', () => (state.ended = true))
  sock.on('error', (e) => (state.error = e))
  sock.on('close', () => (state.closed = true))
  return state
}

const portOf = (url: string) => Number(new URL(url).port)

// Scripts the sandboxed processes run (files in the project directory).

/** `node http.js PORT BODY [DELAY_MS]`: answers BODY; /big streams big.bin; writes its pid to http-PORT.pid. */
const HTTP_JS = `
const http = require('http'), fs = require('fs')
const [port, body, delay] = [Number(process.argv[2]), process.argv[3] || 'ok', Number(process.argv[4] || 0)]
fs.writeFileSync('http-' + port + '.pid', String(process.pid))
const srv = http.createServer((req, res) => {
  if (req.url === '/big') { res.setHeader('content-type', 'application/octet-stream'); fs.createReadStream('big.bin').pipe(res); return }
  res.end(body)
})
setTimeout(() => { fs.writeFileSync('listening-' + port, 'yes'); srv.listen(port, '127.0.0.1') }, delay)
`

/** `node fetch.js PORT EXPECTED`: exit 0 when http://127.0.0.1:PORT/ answers EXPECTED. */
const FETCH_JS = `
fetch('http://127.0.0.1:' + process.argv[2] + '/').then((r) => r.text()).then((t) => {
  console.log('got ' + t)
  process.exit(t === process.argv[3] ? 0 : 1)
}, (e) => { console.error('fetch failed: ' + e); process.exit(2) })
`

/** `node echo.js PORT`: a TCP echo server; writes its pid to echo.pid. */
const ECHO_JS = `
const net = require('net'), fs = require('fs')
fs.writeFileSync('echo.pid', String(process.pid))
net.createServer((s) => { s.on('error', () => {}); s.pipe(s) }).listen(Number(process.argv[2]), '127.0.0.1')
`

/**
 * \`node barrier.js PORT N\`: each client sends "hello-ID\\n"; once N distinct
 * clients said hello on N open connections, each gets "go-ID\\n".
 */
const BARRIER_JS = `
const net = require('net'), n = Number(process.argv[3]), waiting = []
net.createServer((s) => {
  s.on('error', () => {})
  let buf = ''
  s.setEncoding('utf8')
  s.on('data', (d) => {
    buf += d
    const m = /^hello-(\\d+)\\n/.exec(buf)
    if (!m) return
    buf = ''
    waiting.push([s, m[1]])
    if (waiting.length === n) for (const [c, id] of waiting) c.write('go-' + id + '\\n')
  })
}).listen(Number(process.argv[2]), '127.0.0.1')
`

/** `node records.js N`: N records of 1024 bytes, "0000000042xxx...x\\n", in order, with backpressure. */
const RECORDS_JS = `
const total = Number(process.argv[2]), filler = 'x'.repeat(1024 - 11)
let i = 0
function write() {
  while (i < total) {
    let s = ''
    for (let k = 0; k < 64 && i < total; k++) s += String(i++).padStart(10, '0') + filler + '\\n'
    if (!process.stdout.write(s)) return process.stdout.once('drain', write)
  }
}
write()
`

const SCRIPTS = { 'http.js': HTTP_JS, 'fetch.js': FETCH_JS, 'echo.js': ECHO_JS, 'barrier.js': BARRIER_JS, 'records.js': RECORDS_JS }

// ---------------------------------------------------------------- runSetup

describe('runSetup', () => {
  test('runs RUN lines in order; output arrives under "setup"; files are seen by TEST and exec', async () => {
    const rec = new Recorder()
    const sb = sandbox(
      sf({
        runCommands: [
          'echo 1 >> order.txt',
          'echo 2 >> order.txt; echo to-stdout-line',
          'echo 3 >> order.txt; echo to-stderr-line >&2',
        ],
        tests: [{ command: 'cat order.txt' }, { command: 'test "$(cat order.txt | tr -d "\\n")" = 123' }],
      }),
      rec.options,
    )
    expect(await sb.runSetup()).toBe(true)
    await until(() => rec.exits('setup').length === 3, 'three setup exits')
    expect(rec.exits('setup')).toEqual([0, 0, 0])
    expect(rec.stdout('setup')).toBe('to-stdout-line\n')
    expect(rec.stderr('setup')).toBe('to-stderr-line\n')
    // Only "setup" was used as a name for RUN output.
    expect(new Set(rec.events.map((e) => e.name))).toEqual(new Set(['setup']))
    expect((await sb.exec('cat order.txt')).stdout).toBe('1\n2\n3\n')

    const t = await sb.runTests()
    expect(t.passed).toBe(true)
    expect(rec.stdout('test-0')).toBe('1\n2\n3\n')
  }, 20_000)

  test('stops at the first failing RUN line and resolves false', async () => {
    const rec = new Recorder()
    const sb = sandbox(
      sf({ runCommands: ['echo first >> ran.txt', 'echo failing; exit 3', 'echo third >> ran.txt; touch third-ran'] }),
      rec.options,
    )
    expect(await sb.runSetup()).toBe(false)
    await until(() => rec.exits('setup').length === 2, 'two setup exits')
    expect(rec.exits('setup')).toEqual([0, 3])
    expect(rec.stdout('setup')).toBe('failing\n')
    const r = await sb.exec('cat ran.txt; test -e third-ran && echo THIRD-RAN || echo no-third')
    expect(r.stdout).toBe('first\nno-third\n')
    // The failing line's successor never started: no third exit arrives.
    await observe(200)
    expect(rec.exits('setup')).toEqual([0, 3])
  }, 20_000)

  test('a RUN line that names a missing command fails with 127', async () => {
    const rec = new Recorder()
    const sb = sandbox(sf({ runCommands: ['no-such-command-lifecycle-xyz', 'touch after'] }), rec.options)
    expect(await sb.runSetup()).toBe(false)
    await until(() => rec.exits('setup').length === 1, 'one setup exit')
    expect(rec.exits('setup')).toEqual([127])
    expect(rec.stderr('setup')).toContain('no-such-command-lifecycle-xyz')
    expect((await sb.exec('test -e after; echo $?')).stdout).toBe('1\n')
  }, 20_000)
})

// ---------------------------------------------------------------- runTests

describe('runTests', () => {
  test('names test-0, test-1, ...; passed and exitCode; a failure does not stop later tests', async () => {
    const rec = new Recorder()
    const sb = sandbox(
      sf({ tests: [{ command: 'echo zero' }, { command: 'echo one; exit 3' }, { command: 'echo two > two.txt; echo two' }] }),
      rec.options,
    )
    const r = await sb.runTests()
    expect(r).toEqual({
      passed: false,
      results: [
        { name: 'test-0', passed: true, exitCode: 0 },
        { name: 'test-1', passed: false, exitCode: 3 },
        { name: 'test-2', passed: true, exitCode: 0 },
      ],
    })
    expect(rec.stdout('test-0')).toBe('zero\n')
    expect(rec.stdout('test-1')).toBe('one\n')
    expect(rec.stdout('test-2')).toBe('two\n')
    expect((await sb.exec('cat two.txt')).stdout).toBe('two\n')
    expect(rec.exitNames()).toEqual(['test-0', 'test-1', 'test-2'])
    expect(rec.exits()).toEqual([0, 3, 0])
    // onExit comes after all of that process's output.
    for (const name of ['test-0', 'test-1', 'test-2']) {
      const lastOutput = rec.events.findLastIndex((e) => e.kind !== 'exit' && e.name === name)
      const exit = rec.events.findIndex((e) => e.kind === 'exit' && e.name === name)
      expect(lastOutput).toBeGreaterThanOrEqual(0)
      expect(exit).toBeGreaterThan(lastOutput)
    }
  }, 20_000)

  test('all passing: passed is true', async () => {
    const sb = sandbox(sf({ tests: [{ command: 'true' }, { command: 'exit 0' }] }))
    expect(await sb.runTests()).toEqual({
      passed: true,
      results: [
        { name: 'test-0', passed: true, exitCode: 0 },
        { name: 'test-1', passed: true, exitCode: 0 },
      ],
    })
  }, 20_000)

  test('a TEST reaches a SERVICE on localhost', async () => {
    const rec = new Recorder()
    const sb = sandbox(
      sf({
        services: [{ name: 'api', command: 'node http.js 8080 hello-from-api', port: 8080 }],
        tests: [{ command: 'node fetch.js 8080 hello-from-api' }],
      }),
      { cwd: project(SCRIPTS), ...rec.options },
    )
    await sb.startServices()
    const r = await sb.runTests()
    expect(r.results).toEqual([{ name: 'test-0', passed: true, exitCode: 0 }])
    expect(rec.stdout('test-0')).toBe('got hello-from-api\n')
  }, 20_000)
})

// ---------------------------------------------------------------- startServices

describe('startServices', () => {
  test('resolves only once the PORT accepts connections', async () => {
    const sb = sandbox(sf({ services: [{ name: 'slow', command: 'node http.js 8080 slow-body 800', port: 8080 }] }), {
      cwd: project(SCRIPTS),
    })
    await sb.startServices()
    // Straight after resolve: the host side of the published port works …
    const url = sb.getServiceUrl('slow')!
    expect(await (await fetch(url)).text()).toBe('slow-body')
    // … and the service had got past its 800 ms delay (it writes this just before listen()).
    expect((await sb.exec('cat listening-8080')).stdout).toBe('yes')
  }, 20_000)

  test('a PORT nobody opens rejects after readyTimeoutMs, naming the service and port', async () => {
    const sb = sandbox(sf({ services: [{ name: 'neverready', command: 'echo waiting-forever; sleep 30', port: 8081 }] }), {
      readyTimeoutMs: 1500,
    })
    const t0 = Date.now()
    const r = await within(settle(sb.startServices()), 15_000, 'startServices')
    const elapsed = Date.now() - t0
    expect(r.ok).toBe(false)
    if (r.ok) return
    expect(r.error).toBeInstanceOf(Error)
    expect(r.error.message).toContain('neverready')
    expect(r.error.message).toContain('8081')
    expect(r.error.message).toContain('waiting-forever')
    expect(elapsed).toBeGreaterThanOrEqual(1400) // it did wait for the timeout
    expect(sb.getServiceUrl('neverready')).toBeFalsy()
  }, 20_000)

  test('a service that exits before it is ready rejects with its exit code and last output', async () => {
    const rec = new Recorder()
    const sb = sandbox(
      sf({ services: [{ name: 'quitter', command: 'echo last-words-before-exit; exit 7', port: 8082 }] }),
      rec.options,
    )
    const r = await within(settle(sb.startServices()), 15_000, 'startServices')
    expect(r.ok).toBe(false)
    if (r.ok) return
    expect(r.error.message).toContain('quitter')
    expect(r.error.message).toMatch(/exit code 7\b/)
    expect(r.error.message).toContain('last-words-before-exit')
    await until(() => rec.exits('quitter').length === 1, 'onExit(quitter)')
    expect(rec.exits('quitter')).toEqual([7])
  }, 20_000)

  test('a command that does not exist: rejects naming the service, with 127', async () => {
    const rec = new Recorder()
    const sb = sandbox(
      sf({ services: [{ name: 'ghost', command: 'no-such-service-binary-xyz --flag', port: 8083 }] }),
      rec.options,
    )
    const r = await within(settle(sb.startServices()), 15_000, 'startServices')
    expect(r.ok).toBe(false)
    if (r.ok) return
    expect(r.error.message).toContain('ghost')
    expect(r.error.message).toContain('127')
    await until(() => rec.exits('ghost').length === 1, 'onExit(ghost)')
    expect(rec.exits('ghost')).toEqual([127])
    expect(rec.stderr('ghost')).toContain('no-such-service-binary-xyz')
  }, 20_000)

  test('a missing command without PORT: onExit(name, 127) and the error on stderr', async () => {
    const rec = new Recorder()
    const sb = sandbox(sf({ services: [{ name: 'ghost2', command: 'no-such-service-binary-abc' }] }), rec.options)
    const r = await within(settle(sb.startServices()), 15_000, 'startServices')
    // Either way is acceptable (it may not have exited yet when startServices returns) —
    // but a rejection must name the service.
    if (!r.ok) expect(r.error.message).toContain('ghost2')
    await until(() => rec.exits('ghost2').length === 1, 'onExit(ghost2)')
    expect(rec.exits('ghost2')).toEqual([127])
    expect(rec.stderr('ghost2')).toContain('no-such-service-binary-abc')
  }, 20_000)

  test('startDev: resolves { name: "dev", pid } once its PORT is ready; null without DEV', async () => {
    const dir = project(SCRIPTS)
    const sb = sandbox(sf({ dev: { command: 'node http.js 3000 dev-body 300', port: 3000 } }), { cwd: dir })
    const d = await sb.startDev()
    expect(d).not.toBeNull()
    expect(d!.name).toBe('dev')
    expect(d!.pid).toBeGreaterThan(1)
    expect(alive(d!.pid)).toBe(true)
    expect(await (await fetch(sb.getServiceUrl('dev')!)).text()).toBe('dev-body')
    expect(sb.getStatus()).toContainEqual({ name: 'dev', type: 'dev', pid: d!.pid })

    const none = sandbox(sf({}))
    expect(await none.startDev()).toBeNull()
  }, 20_000)
})

// ---------------------------------------------------------------- published ports

describe('published ports', () => {
  test('getServiceUrl is http://127.0.0.1:N and fetch works; unknown names have none', async () => {
    const sb = sandbox(
      sf({
        services: [
          { name: 'web', command: 'node http.js 8080 web-body', port: 8080 },
          { name: 'noport', command: 'sleep 30' },
        ],
      }),
      { cwd: project(SCRIPTS) },
    )
    expect(sb.getServiceUrl('web')).toBeFalsy() // not before it is published
    await sb.startServices()
    const url = sb.getServiceUrl('web')!
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/)
    expect(portOf(url)).toBeGreaterThan(0)
    const res = await fetch(url + '/anything')
    expect(res.status).toBe(200)
    expect(await res.text()).toBe('web-body')
    expect(sb.getServiceUrl('noport')).toBeFalsy()
    expect(sb.getServiceUrl('nosuch')).toBeFalsy()
  }, 20_000)

  test('getServiceUrl without a published port is undefined, as SPEC §2 types it', async () => {
    const sb = sandbox(sf({ services: [{ name: 'noport', command: 'sleep 30' }] }))
    expect(sb.getServiceUrl('nosuch')).toBeUndefined()
    await sb.startServices()
    expect(sb.getServiceUrl('noport')).toBeUndefined()
    expect(sb.getServiceUrl('nosuch')).toBeUndefined()
  }, 20_000)

  test('50 concurrent connections each reach the service at the same time', async () => {
    const N = 50
    const sb = sandbox(sf({ services: [{ name: 'barrier', command: `node barrier.js 9000 ${N}`, port: 9000 }] }), {
      cwd: project(SCRIPTS),
    })
    await sb.startServices()
    const port = portOf(sb.getServiceUrl('barrier')!)
    const conns = Array.from({ length: N }, () => tcp(port))
    await until(() => conns.every((c) => c.connected || c.error), 'all connected')
    expect(conns.filter((c) => c.error).map((c) => String(c.error))).toEqual([])
    conns.forEach((c, i) => c.sock.write(`hello-${i}\n`))
    // The server answers nobody until all N are open at once inside.
    await until(() => conns.every((c) => c.data.includes('\n') || c.closed), 'every go line', 15_000)
    expect(conns.map((c) => c.data)).toEqual(conns.map((_, i) => `go-${i}\n`))
    for (const c of conns) c.sock.destroy()
  }, 30_000)

  test('a 20 MB response transfers intact', async () => {
    const sb = sandbox(
      sf({
        runCommands: ['head -c 20971520 /dev/urandom > big.bin'],
        services: [{ name: 'files', command: 'node http.js 8080 x', port: 8080 }],
      }),
      { cwd: project(SCRIPTS) },
    )
    expect(await sb.runSetup()).toBe(true)
    const inside = (await sb.exec('sha256sum big.bin')).stdout.split(' ')[0]
    expect(inside).toMatch(/^[0-9a-f]{64}$/)
    await sb.startServices()
    const res = await within(fetch(sb.getServiceUrl('files')! + '/big'), 20_000, 'fetch /big')
    const body = new Uint8Array(await within(res.arrayBuffer(), 20_000, 'reading /big'))
    expect(body.length).toBe(20971520)
    expect(createHash('sha256').update(body).digest('hex')).toBe(inside)
  }, 40_000)

  test('when the service dies, open and new connections to its published port close cleanly', async () => {
    const rec = new Recorder()
    const sb = sandbox(sf({ services: [{ name: 'echo', command: 'exec node echo.js 7000', port: 7000 }] }), {
      cwd: project(SCRIPTS),
      ...rec.options,
    })
    await sb.startServices()
    const port = portOf(sb.getServiceUrl('echo')!)
    const open = tcp(port)
    open.sock.write('ping\n')
    await until(() => open.data === 'ping\n', 'the echo', 5_000)

    expect((await sb.exec('kill -9 $(cat echo.pid)')).exitCode).toBe(0)
    await until(() => rec.exits('echo').length === 1, 'onExit(echo)')
    // The connection that was open is closed, not left hanging.
    await until(() => open.closed, 'the open connection to close', 5_000)

    // A new connection: accepted by the host listener (or refused), then closed — never hangs.
    const late = tcp(port)
    await until(() => late.closed, 'a new connection to close', 5_000)
    expect(late.data).toBe('')
    // fetch fails promptly instead of hanging.
    const f = await within(settle(fetch(sb.getServiceUrl('echo')!)), 5_000, 'fetch to a dead service')
    expect(f.ok).toBe(false)
  }, 20_000)
})

// ---------------------------------------------------------------- onExit, getStatus, isRunning

describe('onExit, getStatus, isRunning', () => {
  test('onExit fires once per process with its code; a SIGKILLed service gets null', async () => {
    const rec = new Recorder()
    const sb = sandbox(
      sf({
        runCommands: ['exit 0'],
        services: [{ name: 'victim', command: 'echo $$ > victim.pid; exec sleep 1000' }],
        tests: [{ command: 'exit 0' }, { command: 'exit 5' }, { command: 'kill -9 $(cat victim.pid)' }],
      }),
      rec.options,
    )
    expect(sb.isRunning()).toBe(false)
    expect(sb.getStatus()).toEqual([])
    expect(await sb.runSetup()).toBe(true)
    await sb.startServices()
    await until(async () => (await sb.exec('test -s victim.pid')).exitCode === 0, 'victim.pid')

    // getStatus: the live service with its host pid, which is the process that wrote victim.pid.
    const status = sb.getStatus()
    const victim = status.find((p) => p.name === 'victim')!
    expect(victim).toMatchObject({ name: 'victim', type: 'service' })
    expect(Number.isInteger(victim.pid)).toBe(true)
    expect(victim.pid).toBeGreaterThan(1)
    expect(alive(victim.pid)).toBe(true)
    const nspid = /NSpid:\s+([\d\s]+)/.exec(readFileSync(`/proc/${victim.pid}/status`, 'utf8'))![1].trim().split(/\s+/)
    expect(nspid[0]).toBe(String(victim.pid))
    expect(nspid.at(-1)).toBe((await sb.exec('cat victim.pid')).stdout.trim())
    expect(sb.isRunning()).toBe(true)

    const t = await sb.runTests()
    expect(t.results.map((r) => r.exitCode)).toEqual([0, 5, 0])
    await until(() => rec.exits('victim').length === 1, 'onExit(victim)')
    expect(rec.exits('victim')).toEqual([null])
    // Dropped from getStatus once it exited; nothing else runs.
    await until(() => !sb.getStatus().some((p) => p.name === 'victim'), 'victim gone from getStatus')
    expect(sb.getStatus()).toEqual([])
    await until(() => !alive(victim.pid), 'the victim pid to vanish on the host')
    expect(sb.isRunning()).toBe(false)

    await sb.stop()
    // Exactly once each, in the order they ended.
    expect(rec.exits('setup')).toEqual([0])
    expect(rec.exits('test-0')).toEqual([0])
    expect(rec.exits('test-1')).toEqual([5])
    expect(rec.exits('test-2')).toEqual([0])
    expect(rec.exits('victim')).toEqual([null])
    expect(rec.exitNames().sort()).toEqual(['setup', 'test-0', 'test-1', 'test-2', 'victim'])
  }, 20_000)

  test('a service that kills itself with SIGKILL: onExit(name, null) once', async () => {
    const rec = new Recorder()
    const sb = sandbox(sf({ services: [{ name: 'suicide', command: 'echo going; kill -9 $$' }] }), rec.options)
    await settle(sb.startServices())
    await until(() => rec.exits('suicide').length === 1, 'onExit(suicide)')
    expect(rec.exits('suicide')).toEqual([null])
    expect(rec.stdout('suicide')).toBe('going\n')
    await sb.stop()
    expect(rec.exits('suicide')).toEqual([null])
  }, 20_000)

  test('getStatus lists a running TEST and RUN with their types', async () => {
    const sb = sandbox(
      sf({
        runCommands: ['while [ ! -e go-run ]; do sleep 0.02; done'],
        tests: [{ command: 'while [ ! -e go-test ]; do sleep 0.02; done' }],
      }),
    )
    const setup = sb.runSetup()
    await until(() => sb.getStatus().some((p) => p.name === 'setup'), 'setup in getStatus')
    const s = sb.getStatus().find((p) => p.name === 'setup')!
    expect(s.type).toBe('run')
    expect(alive(s.pid)).toBe(true)
    expect(sb.isRunning()).toBe(true)
    await sb.exec('touch go-run')
    expect(await within(setup, 10_000, 'runSetup')).toBe(true)

    const tests = sb.runTests()
    await until(() => sb.getStatus().some((p) => p.name === 'test-0'), 'test-0 in getStatus')
    expect(sb.getStatus().find((p) => p.name === 'test-0')!.type).toBe('test')
    await sb.exec('touch go-test')
    expect((await within(tests, 10_000, 'runTests')).passed).toBe(true)
    await until(() => sb.getStatus().length === 0, 'an empty getStatus')
    expect(sb.isRunning()).toBe(false)
  }, 20_000)
})

// ---------------------------------------------------------------- stop()

describe('stop()', () => {
  test('a service that ignores SIGTERM still dies; stop resolves; state is gone', async () => {
    const sb = sandbox(sf({ services: [{ name: 'stubborn', command: 'trap "" TERM; echo trapped; while :; do sleep 1; done' }] }))
    await sb.startServices()
    await until(() => sb.getStatus().some((p) => p.name === 'stubborn'), 'stubborn running')
    const pid = sb.getStatus().find((p) => p.name === 'stubborn')!.pid
    expect(alive(pid)).toBe(true)
    await within(sb.stop(), 15_000, 'stop()')
    expect(alive(pid)).toBe(false)
    expect(sb.isRunning()).toBe(false)
    expect(sb.getStatus()).toEqual([])
  }, 20_000)

  test('no callback fires after stop() resolves', async () => {
    let outs = 0
    let exits = 0
    const sb = sandbox(sf({ services: [{ name: 'chatty', command: 'while :; do echo tick; sleep 0.01; done' }] }), {
      onStdout: () => void outs++,
      onStderr: () => void outs++,
      onExit: () => void exits++,
    })
    await sb.startServices()
    await until(() => outs >= 10, 'ten ticks')
    await sb.stop()
    const [o, e] = [outs, exits]
    await observe(300)
    expect(outs).toBe(o)
    expect(exits).toBe(e)
  }, 20_000)

  test('idempotent: twice, concurrently, and before anything started', async () => {
    const never = sandbox(sf({}))
    await never.stop()
    await never.stop()
    expect(never.isRunning()).toBe(false)

    const sb = sandbox(sf({ services: [{ name: 's', command: 'sleep 30' }] }))
    await sb.startServices()
    await within(Promise.all([sb.stop(), sb.stop()]), 15_000, 'two concurrent stops')
    await within(sb.stop(), 5_000, 'a third stop')
    expect(sb.isRunning()).toBe(false)
    // The sandbox is gone: using it again is a clear error.
    await expect(sb.exec('true')).rejects.toThrow(/stopped/)
  }, 20_000)

  test('stop() during runSetup resolves promptly; runSetup resolves false; later RUN lines never run', async () => {
    const rec = new Recorder()
    const sb = sandbox(sf({ runCommands: ['sleep 30', 'touch after-sleep'] }), rec.options)
    const setup = sb.runSetup()
    await until(() => sb.getStatus().some((p) => p.type === 'run'), 'the RUN line to start')
    const t0 = Date.now()
    await within(sb.stop(), 10_000, 'stop() during runSetup')
    expect(await within(setup, 5_000, 'runSetup after stop')).toBe(false)
    expect(Date.now() - t0).toBeLessThan(10_000)
    expect(rec.exits('setup').length).toBeLessThanOrEqual(1)
  }, 20_000)

  test('stop() while startServices waits for readiness: both settle promptly', async () => {
    const sb = sandbox(sf({ services: [{ name: 'unready', command: 'sleep 30', port: 8084 }] }))
    const start = settle(sb.startServices())
    await until(() => sb.getStatus().some((p) => p.name === 'unready'), 'the service to start')
    const t0 = Date.now()
    await within(sb.stop(), 10_000, 'stop() during startServices')
    const r = await within(start, 5_000, 'startServices after stop')
    if (!r.ok) expect(r.error).toBeInstanceOf(Error)
    expect(Date.now() - t0).toBeLessThan(10_000)
  }, 20_000)
})

// ---------------------------------------------------------------- callbacks that throw

describe('a callback that throws', () => {
  test('the sandbox keeps going, later output arrives, the host process lives', async () => {
    const seen: string[] = []
    const exits: string[] = []
    const sb = sandbox(
      sf({ tests: [{ command: 'echo first-output' }, { command: 'echo second-output; echo err-output >&2' }, { command: 'echo third-output' }] }),
      {
        onStdout: (name, data) => {
          seen.push(`${name}:${data}`)
          throw new Error('onStdout throws on purpose')
        },
        onStderr: (name, data) => {
          seen.push(`${name}!${data}`)
          throw new TypeError('onStderr throws on purpose')
        },
        onExit: (name) => {
          exits.push(name)
          throw new Error('onExit throws on purpose')
        },
      },
    )
    const r = await sb.runTests()
    expect(r.passed).toBe(true)
    await until(() => exits.length === 3, 'three exits')
    // Every chunk reached its callback although each call threw (stdout and
    // stderr of one process are separate streams: their relative order is free).
    expect(seen.filter((s) => s.includes(':'))).toEqual(['test-0:first-output\n', 'test-1:second-output\n', 'test-2:third-output\n'])
    expect(seen.filter((s) => s.includes('!'))).toEqual(['test-1!err-output\n'])
    expect(exits).toEqual(['test-0', 'test-1', 'test-2'])
    // Still usable.
    expect((await sb.exec('echo still-here')).stdout).toBe('still-here\n')
  }, 20_000)
})

// ---------------------------------------------------------------- output streams

describe('output streams', () => {
  test('100 MB of stdout arrives exactly, in order', async () => {
    const RECORDS = 102_400 // 1024 bytes each: 104857600 bytes
    const filler = 'x'.repeat(1024 - 11)
    let carry = ''
    let next = 0
    let total = 0
    let bad: string | null = null
    const sb = sandbox(sf({ tests: [{ command: `node records.js ${RECORDS}` }] }), {
      cwd: project(SCRIPTS),
      onStdout: (name, data) => {
        if (name !== 'test-0' || bad) return
        total += data.length
        let s = carry + data
        let at = 0
        for (; at + 1024 <= s.length; at += 1024) {
          const rec = s.slice(at, at + 1024)
          if (rec !== String(next).padStart(10, '0') + filler + '\n') {
            bad = `record ${next} at byte ${next * 1024}: ${JSON.stringify(rec.slice(0, 40))}…`
            return
          }
          next++
        }
        carry = s.slice(at)
      },
    })
    const r = await sb.runTests()
    expect(r.passed).toBe(true)
    expect(bad).toBeNull()
    expect(total).toBe(104_857_600)
    expect(next).toBe(RECORDS)
    expect(carry).toBe('')
  }, 40_000)

  test('head -c 104857600 /dev/zero | tr: exactly 104857600 "a"s', async () => {
    let total = 0
    let others = 0
    const sb = sandbox(sf({ tests: [{ command: "head -c 104857600 /dev/zero | tr '\\0' 'a'" }] }), {
      onStdout: (name, data) => {
        if (name !== 'test-0') return
        total += data.length
        if (!/^a*$/.test(data)) others++
      },
    })
    const r = await sb.runTests()
    expect(r.passed).toBe(true)
    expect(total).toBe(104_857_600)
    expect(others).toBe(0)
  }, 40_000)

  // A bounded check, not a timing threshold: with a consumer slower than the
  // producer, output must be held back at the pipe, not queued in memory.
  test('a slow consumer (1 ms busy-wait per call) keeps host memory bounded', async () => {
    const BYTES = 256 * 1024 * 1024
    let total = 0
    let calls = 0
    Bun.gc(true)
    const before = process.memoryUsage().rss
    let peak = before
    const sb = sandbox(sf({ tests: [{ command: `head -c ${BYTES} /dev/zero | tr '\\0' 'a'` }] }), {
      onStdout: (_name, data) => {
        total += data.length
        if (++calls % 64 === 0) peak = Math.max(peak, process.memoryUsage().rss)
        const end = performance.now() + 1
        while (performance.now() < end) {}
      },
    })
    const r = await sb.runTests()
    const after = process.memoryUsage().rss
    peak = Math.max(peak, after)
    expect(r.passed).toBe(true)
    expect(total).toBe(BYTES)
    const growthMB = (peak - before) / 1024 / 1024
    console.log(`slow consumer: ${calls} calls, peak RSS growth ${growthMB.toFixed(1)} MB`)
    expect(growthMB).toBeLessThan(200)
  }, 60_000)
})

// ---------------------------------------------------------------- the event loop

describe("the host's event loop", () => {
  /** A child `bun` that starts a SERVICE with a PORT, prints STARTED <pids>, and stops if asked. */
  function child(stop: boolean, marker: string) {
    const dir = project(SCRIPTS)
    const script = join(dir, 'child.mjs')
    writeFileSync(
      script,
      `
import { Sandbox } from ${JSON.stringify(PKG)}
const sb = new Sandbox(
  { from: 'host', workdir: '.', runCommands: [], services: [{ name: 'web', command: 'node http.js 8080 ${marker}', port: 8080 }],
    tests: [], outputs: [], logs: [], net: [], secrets: [] },
  { cwd: ${JSON.stringify(dir)}, onStdout() {}, onStderr() {}, onExit() {} },
)
await sb.startServices()
const res = await fetch(sb.getServiceUrl('web'))
console.log('STARTED ' + JSON.stringify({ body: await res.text(), pids: sb.getStatus().map((p) => p.pid) }))
if (${stop}) { await sb.stop(); console.log('STOPPED') }
`,
    )
    const proc = spawn(process.execPath, [script], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] })
    const state = { stdout: '', stderr: '', exit: undefined as undefined | { code: number | null; signal: string | null } }
    proc.stdout.setEncoding('utf8').on('data', (d) => (state.stdout += d))
    proc.stderr.setEncoding('utf8').on('data', (d) => (state.stderr += d))
    proc.on('exit', (code, signal) => (state.exit = { code, signal }))
    return { proc, state }
  }

  /** Processes on the host whose command line holds `marker`. */
  function withMarker(marker: string): string[] {
    const ps = spawnSync('ps', ['-eo', 'pid,args'], { encoding: 'utf8' })
    return ps.stdout.split('\n').filter((l) => l.includes(marker))
  }

  test('after stop() the child exits by itself', async () => {
    const marker = `lifecycle-marker-${process.pid}-${Date.now()}-a`
    const { proc, state } = child(true, marker)
    try {
      await until(() => state.exit !== undefined, 'the child to exit by itself', 20_000)
    } finally {
      if (state.exit === undefined) proc.kill('SIGKILL')
    }
    expect(state.stderr).not.toMatch(/panic|Segmentation/i)
    expect(state.stdout).toContain(`"body":"${marker}"`)
    expect(state.stdout).toContain('STOPPED')
    expect(state.exit).toEqual({ code: 0, signal: null })
    expect(withMarker(marker)).toEqual([])
  }, 30_000)

  test('without stop() the child stays alive while services run; killing it leaves no sandboxed process', async () => {
    const marker = `lifecycle-marker-${process.pid}-${Date.now()}-b`
    const { proc, state } = child(false, marker)
    try {
      await until(() => state.stdout.includes('STARTED') || state.exit !== undefined, 'STARTED', 20_000)
      expect(state.exit).toBeUndefined()
      const { body, pids } = JSON.parse(/STARTED (.*)/.exec(state.stdout)![1])
      expect(body).toBe(marker)
      expect(pids.length).toBe(1)
      expect(withMarker(marker).length).toBeGreaterThan(0)
      await observe(500)
      expect(state.exit).toBeUndefined() // the running service holds the loop
      expect(alive(pids[0])).toBe(true)

      proc.kill('SIGKILL')
      await until(() => state.exit !== undefined, 'the child to die', 5_000)
      // The host process died: every sandboxed process dies with it.
      await until(() => !alive(pids[0]), 'the service pid to vanish', 10_000)
      await until(() => withMarker(marker).length === 0, 'no process with the marker', 10_000)
    } finally {
      if (state.exit === undefined) proc.kill('SIGKILL')
    }
  }, 40_000)
})

// ---------------------------------------------------------------- run()

describe('run()', () => {
  test('the whole lifecycle: SERVICE, DEV with PORT, two TESTs; services stay up; OUTPUT extracted', async () => {
    const rec = new Recorder()
    const extractDir = mkdtempSync(join(tmpdir(), 'bun-sandbox-lifecycle-extract-'))
    const sb = sandbox(
      sf({
        runCommands: ['mkdir -p out && echo built > out/build.txt'],
        services: [{ name: 'api', command: 'node http.js 4000 api-body 200', port: 4000 }],
        dev: { command: 'node http.js 3000 dev-body 200', port: 3000 },
        tests: [
          { command: 'node fetch.js 4000 api-body && echo tested > out/test.txt' },
          { command: 'node fetch.js 3000 dev-body && test "$(cat out/build.txt)" = built' },
        ],
        outputs: ['out/'],
      }),
      { cwd: project(SCRIPTS), extractDir, ...rec.options },
    )
    const r = await sb.run()
    expect(r).toEqual({
      success: true,
      testResults: {
        passed: true,
        results: [
          { name: 'test-0', passed: true, exitCode: 0 },
          { name: 'test-1', passed: true, exitCode: 0 },
        ],
      },
    })
    expect(rec.stdout('test-0')).toBe('got api-body\n')
    expect(rec.stdout('test-1')).toBe('got dev-body\n')
    // DEV and SERVICE are still up after run() resolved.
    expect(sb.isRunning()).toBe(true)
    expect(sb.getStatus().map((p) => `${p.type}:${p.name}`).sort()).toEqual(['dev:dev', 'service:api'])
    expect(await (await fetch(sb.getServiceUrl('api')!)).text()).toBe('api-body')
    expect(await (await fetch(sb.getServiceUrl('dev')!)).text()).toBe('dev-body')
    // OUTPUT written by RUN and TEST landed in extractDir.
    expect(readFileSync(join(extractDir, 'out/build.txt'), 'utf8')).toBe('built\n')
    expect(readFileSync(join(extractDir, 'out/test.txt'), 'utf8')).toBe('tested\n')

    await sb.stop()
    expect(readFileSync(join(extractDir, 'out/test.txt'), 'utf8')).toBe('tested\n')
    expect(rec.exits('api')).toHaveLength(1)
    expect(rec.exits('dev')).toHaveLength(1)
  }, 30_000)

  test('a failing RUN line: success false, no tests, no services', async () => {
    const rec = new Recorder()
    const sb = sandbox(
      sf({ runCommands: ['exit 4'], services: [{ name: 'svc', command: 'sleep 30' }], tests: [{ command: 'true' }] }),
      rec.options,
    )
    const r = await sb.run()
    expect(r.success).toBe(false)
    expect(r.testResults).toBeUndefined()
    expect(sb.getStatus()).toEqual([])
    expect(rec.exitNames()).toEqual(['setup'])
  }, 20_000)

  test('a failing TEST: success false with the results', async () => {
    const sb = sandbox(sf({ tests: [{ command: 'exit 1' }, { command: 'true' }] }))
    const r = await sb.run()
    expect(r).toEqual({
      success: false,
      testResults: {
        passed: false,
        results: [
          { name: 'test-0', passed: false, exitCode: 1 },
          { name: 'test-1', passed: true, exitCode: 0 },
        ],
      },
    })
  }, 20_000)

  test('without TEST lines: success and no testResults', async () => {
    const sb = sandbox(sf({ runCommands: ['true'] }))
    const r = await sb.run()
    expect(r.success).toBe(true)
    expect(r.testResults).toBeUndefined()
  }, 20_000)
})
