// The command line (SPEC §5) driving the real isolation runtime: run, test,
// exec and extract, as subprocesses under Bun and under Node. No fixed sleeps:
// long-running commands are followed through their output (every chunk is
// checked as it arrives, with a bounded wait) and through their exit.
import { afterAll, afterEach, describe, expect, test } from 'bun:test'
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, relative, resolve } from 'node:path'

const ROOT = resolve(import.meta.dir, '..')
const CLI = join(ROOT, 'bin', 'bun-sandbox.js')
const NODE = Bun.which('node')
const BUN = process.execPath // inside `bun test`, the bun binary
const RUNTIMES = [
  ['bun', BUN],
  ['node', NODE],
].filter(([, bin]) => bin) as [string, string][]
const ANSI = /\x1b\[/
const STATE_ROOT = process.env.BUN_SANDBOX_STATE_DIR || `/tmp/bun-sandbox-${process.getuid!()}`
const WAIT_MS = 20_000 // upper bound for any one wait on a subprocess
const TEST_MS = 60_000

const scratch = mkdtempSync(join(tmpdir(), 'bun-sandbox-cli-rt-'))
afterAll(() => rmSync(scratch, { recursive: true, force: true }))

let counter = 0
/** A fresh directory with the given files (path -> content). */
function project(files: Record<string, string>): string {
  const dir = join(scratch, `p${counter++}`)
  mkdirSync(dir, { recursive: true })
  for (const [name, content] of Object.entries(files)) {
    mkdirSync(join(dir, name, '..'), { recursive: true })
    writeFileSync(join(dir, name), content)
  }
  return dir
}

/** Every file under dir with its content, for "unchanged" checks. */
function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {}
  const walk = (d: string) => {
    for (const name of readdirSync(d).sort()) {
      const p = join(d, name)
      if (statSync(p).isDirectory()) {
        out[relative(dir, p) + '/'] = ''
        walk(p)
      } else out[relative(dir, p)] = readFileSync(p, 'utf8')
    }
  }
  walk(dir)
  return out
}

function cliEnv(env: Record<string, string>): Record<string, string> {
  const base: Record<string, string | undefined> = { ...process.env }
  for (const k of ['NO_COLOR', 'FORCE_COLOR', 'NODE_EXTRA_CA_CERTS', 'CI', 'FOO']) delete base[k]
  return { ...(base as Record<string, string>), NO_COLOR: '1', ...env }
}

type Result = { code: number | null; stdout: string; stderr: string }

/** Runs the CLI to completion (bounded by a timeout). */
function cli(args: string[], { runtime = BUN, cwd = scratch, env = {} }: { runtime?: string; cwd?: string; env?: Record<string, string> } = {}): Result {
  const r = spawnSync(runtime, [CLI, ...args], { cwd, env: cliEnv(env), encoding: 'utf8', timeout: WAIT_MS })
  if (r.error) throw r.error
  return { code: r.status, stdout: r.stdout, stderr: r.stderr }
}

/** Every stdout line is a JSON object with a type. */
function jsonLines(stdout: string): any[] {
  return stdout.split('\n').filter((l) => l !== '').map((l) => {
    let event: any
    expect(() => (event = JSON.parse(l))).not.toThrow()
    expect(typeof event.type).toBe('string')
    return event
  })
}

/** A long-running CLI process whose output is followed as it arrives. */
class Live {
  child: ChildProcess
  stdout = ''
  stderr = ''
  exit: Promise<{ code: number | null; signal: string | null }>
  private waiters = new Set<() => void>()
  private exited = false

  constructor(args: string[], { runtime = BUN, cwd = scratch, env = {} }: { runtime?: string; cwd?: string; env?: Record<string, string> } = {}) {
    this.child = spawn(runtime, [CLI, ...args], { cwd, env: cliEnv(env), stdio: ['ignore', 'pipe', 'pipe'] })
    this.child.stdout!.setEncoding('utf8').on('data', (d: string) => ((this.stdout += d), this.notify()))
    this.child.stderr!.setEncoding('utf8').on('data', (d: string) => ((this.stderr += d), this.notify()))
    this.exit = new Promise((res) => {
      this.child.on('close', (code, signal) => {
        this.exited = true
        this.notify()
        res({ code, signal })
      })
    })
    live.add(this)
  }

  get pid(): number {
    return this.child.pid!
  }

  private notify() {
    for (const w of this.waiters) w()
  }

  /** Resolves with predicate()'s first truthy value; rejects on exit or after `ms`. */
  waitFor<T>(what: string, predicate: () => T | undefined | false | null, ms = WAIT_MS): Promise<T> {
    return new Promise((res, rej) => {
      const check = () => {
        const v = predicate()
        if (v) return done(() => res(v))
        if (this.exited) done(() => rej(new Error(`exited before ${what}\n--- stdout\n${this.stdout}\n--- stderr\n${this.stderr}`)))
      }
      const timer = setTimeout(() => done(() => rej(new Error(`timed out waiting for ${what}\n--- stdout\n${this.stdout}\n--- stderr\n${this.stderr}`))), ms)
      const done = (f: () => void) => {
        clearTimeout(timer)
        this.waiters.delete(check)
        f()
      }
      this.waiters.add(check)
      check()
    })
  }

  /** Waits (bounded) for the process to exit. */
  async exited_(ms = WAIT_MS) {
    let timer: any
    const timeout = new Promise<never>((_, rej) => {
      timer = setTimeout(() => rej(new Error(`did not exit within ${ms}ms\n--- stdout\n${this.stdout}\n--- stderr\n${this.stderr}`)), ms)
    })
    try {
      return await Promise.race([this.exit, timeout])
    } finally {
      clearTimeout(timer)
    }
  }
}

// Never leave a CLI process behind, even when a test fails half-way.
const live = new Set<Live>()
afterEach(() => {
  for (const l of live) if (l.child.exitCode === null && l.child.signalCode === null) l.child.kill('SIGKILL')
  live.clear()
})

/** Host processes whose command line contains marker (excluding the ps itself). */
function hostProcesses(marker: string): string[] {
  const r = spawnSync('ps', ['-eo', 'pid,args'], { encoding: 'utf8' })
  return r.stdout.split('\n').filter((l) => l.includes(marker))
}

/** State dirs of the sandboxes a given CLI process created, also once `stop()` renamed them to be deleted. */
function stateDirs(pid: number): string[] {
  if (!existsSync(STATE_ROOT)) return []
  return readdirSync(STATE_ROOT).filter((n) => n.startsWith(`sb-${pid}-`) || n.startsWith(`gone-sb-${pid}-`))
}

/** A DEV line: a node http server on port 3000 answering `answer`, tagged with a unique marker. */
function devServer(marker: string, answer: string) {
  const js = `/*${marker}*/ require('http').createServer((q, s) => s.end('${answer}')).listen(3000, () => console.log('listening'))`
  return `DEV PORT=3000 node -e "${js}"`
}

const uniqueMarker = () => `marker-${process.pid}-${Math.random().toString(36).slice(2)}`

// ---------------------------------------------------------------------------

describe.each(RUNTIMES)('under %s', (_name, runtime) => {
  describe('test', () => {
    const SF = (failing: boolean) => `FROM host
WORKDIR .
RUN echo setup-ran
TEST sh -c 'echo first-line; echo second-line; echo to-stderr >&2'
TEST sh -c 'printf no-newline; exit ${failing ? 3 : 0}'
`

    test('all pass: exit 0, prefixed process output, a summary line', () => {
      const dir = project({ Sandboxfile: SF(false) })
      const r = cli(['test'], { runtime, cwd: dir })
      expect(r.code).toBe(0)
      expect(r.stdout).not.toMatch(ANSI)
      const lines = r.stdout.trimEnd().split('\n')
      // each line of a process's output carries its name, the names padded alike
      expect(lines).toContain('setup  | setup-ran')
      expect(lines).toContain('test-0 | first-line')
      expect(lines).toContain('test-0 | second-line')
      expect(lines).toContain('test-1 | no-newline') // an unterminated last line is flushed, prefixed
      expect(r.stderr.split('\n')).toContain('test-0 | to-stderr')
      expect(lines).toContain('✓ test-0')
      expect(lines).toContain('✓ test-1')
      expect(lines.at(-1)).toBe('2 passed, 0 failed')
      // nothing else on stdout: process lines, results, the summary
      for (const l of lines) expect(l).toMatch(/^(\S+ *\| .*|[✓✗] test-\d.*|\d+ passed, \d+ failed)$/)
    }, TEST_MS)

    test('one fails: exit 1, the failure and its exit code, the summary line', () => {
      const dir = project({ Sandboxfile: SF(true) })
      const r = cli(['test'], { runtime, cwd: dir })
      expect(r.code).toBe(1)
      const lines = r.stdout.trimEnd().split('\n')
      expect(lines).toContain('✓ test-0')
      expect(lines).toContain('✗ test-1 (exit 3)')
      expect(lines.at(-1)).toBe('1 passed, 1 failed')
      expect(r.stderr).toContain('test-1 exited with code 3')
    }, TEST_MS)

    test('a failing RUN: exit 1, no test runs', () => {
      const dir = project({ Sandboxfile: 'RUN sh -c "exit 4"\nTEST echo should-not-run\n' })
      const r = cli(['test'], { runtime, cwd: dir })
      expect(r.code).toBe(1)
      expect(r.stdout).not.toContain('should-not-run')
      expect(r.stderr).toContain('setup failed')
    }, TEST_MS)

    test('--json: every stdout line is JSON; test events, then a final tests event', () => {
      for (const failing of [false, true]) {
        const dir = project({ Sandboxfile: SF(failing) })
        const r = cli(['test', '--json'], { runtime, cwd: dir })
        expect(r.code).toBe(failing ? 1 : 0)
        expect(r.stdout).not.toMatch(ANSI)
        const events = jsonLines(r.stdout)
        expect(events.filter((e) => e.type === 'test')).toEqual([
          { type: 'test', name: 'test-0', passed: true, exitCode: 0 },
          { type: 'test', name: 'test-1', passed: !failing, exitCode: failing ? 3 : 0 },
        ])
        expect(events.at(-1)).toEqual({ type: 'tests', passed: !failing, total: 2, failed: failing ? 1 : 0 })
        // process output comes as output events, not as prefixed text
        expect(events).toContainEqual({ type: 'output', name: 'test-0', stream: 'stdout', line: 'first-line' })
        expect(events).toContainEqual({ type: 'output', name: 'test-0', stream: 'stderr', line: 'to-stderr' })
      }
    }, TEST_MS)
  })

  describe('exec', () => {
    test('exits with the command\'s exit code', () => {
      const dir = project({ Sandboxfile: 'RUN true\n' })
      expect(cli(['exec', '--', 'sh', '-c', 'exit 7'], { runtime, cwd: dir }).code).toBe(7)
      expect(cli(['exec', '--', 'exit 5'], { runtime, cwd: dir }).code).toBe(5) // one argument: a shell line
      expect(cli(['exec', '--', 'true'], { runtime, cwd: dir }).code).toBe(0)
    }, TEST_MS)

    test('-e reaches the sandbox; the command\'s stdout is on stdout, unprefixed; setup on stderr', () => {
      const dir = project({ Sandboxfile: 'RUN echo setup-ran\n' })
      const r = cli(['exec', '-e', 'FOO=bar', '--', 'echo $FOO'], { runtime, cwd: dir })
      expect(r.code).toBe(0)
      expect(r.stdout).toBe('bar\n')
      expect(r.stderr).toContain('setup | setup-ran')
      expect(r.stderr).not.toContain('| bar')
      // without -e, FOO is not set inside the sandbox
      expect(cli(['exec', '--', 'echo "[$FOO]"'], { runtime, cwd: dir }).stdout).toBe('[]\n')
    }, TEST_MS)

    test('several arguments are an argv (no shell); stderr stays on stderr; flags after -- belong to the command', () => {
      const dir = project({ Sandboxfile: 'RUN true\n' })
      const argv = cli(['exec', '--', 'printf', '%s|', 'a b', '$HOME', '--bogus'], { runtime, cwd: dir })
      expect(argv.code).toBe(0)
      expect(argv.stdout).toBe('a b|$HOME|--bogus|')
      const err = cli(['exec', '-e', 'A=1', '--', 'echo out-$A; echo err-$A >&2; exit 2'], { runtime, cwd: dir })
      expect(err.code).toBe(2)
      expect(err.stdout).toBe('out-1\n')
      expect(err.stderr).toContain('err-1')
    }, TEST_MS)

    test('--json: an exec event with the exit code and output', () => {
      const dir = project({ Sandboxfile: 'RUN true\n' })
      const r = cli(['exec', '--json', '-e', 'FOO=bar', '--', 'echo $FOO; exit 3'], { runtime, cwd: dir })
      expect(r.code).toBe(3)
      const events = jsonLines(r.stdout)
      expect(events.find((e) => e.type === 'exec')).toMatchObject({ exitCode: 3, stdout: 'bar\n' })
    }, TEST_MS)
  })

  test('extract -o DIR: OUTPUT changes land in DIR; the project is unchanged', () => {
    const dir = project({
      Sandboxfile: 'FROM host\nWORKDIR .\nRUN mkdir -p out && echo content-a > out/a.txt && echo junk > junk.txt && echo changed > keep.txt\nOUTPUT out/\n',
      'keep.txt': 'original\n',
    })
    const before = snapshot(dir)
    const dest = join(scratch, `extract-${counter++}`)
    const r = cli(['extract', '-o', dest], { runtime, cwd: dir })
    expect(r.code).toBe(0)
    expect(readFileSync(join(dest, 'out', 'a.txt'), 'utf8')).toBe('content-a\n')
    // only OUTPUT paths leave the sandbox
    expect(existsSync(join(dest, 'junk.txt'))).toBe(false)
    expect(existsSync(join(dest, 'keep.txt'))).toBe(false)
    expect(snapshot(dir)).toEqual(before)
    expect(r.stderr).toContain('extracted 1 file')
  }, TEST_MS)

  test('run: prints the dev URL, serves it, Ctrl-C stops everything (exit 0, nothing left)', async () => {
    const marker = uniqueMarker()
    const dir = project({ Sandboxfile: `FROM host\nWORKDIR .\n${devServer(marker, `hello-${marker}`)}\n` })
    const p = new Live(['run'], { runtime, cwd: dir })
    const url = await p.waitFor('the dev URL', () => p.stdout.match(/^dev: (http:\/\/127\.0\.0\.1:\d+)$/m)?.[1])
    const res = await fetch(url)
    expect(await res.text()).toBe(`hello-${marker}`)
    // while it runs: the server is a host process, the sandbox has its state dir
    expect(hostProcesses(marker).length).toBeGreaterThan(0)
    expect(stateDirs(p.pid).length).toBeGreaterThan(0)
    await p.waitFor('the Ctrl-C hint', () => p.stderr.includes('Ctrl-C'))

    p.child.kill('SIGINT')
    const { code, signal } = await p.exited_()
    expect({ code, signal }).toEqual({ code: 0, signal: null })
    expect(p.stderr).toContain('stopping')
    expect(p.stdout).toContain('dev | listening')
    expect(hostProcesses(marker)).toEqual([])
    expect(stateDirs(p.pid)).toEqual([])
    // the port is no longer served
    await expect(fetch(url)).rejects.toThrow()
  }, TEST_MS)

  test('run --json: a url event for dev; SIGTERM stops it cleanly', async () => {
    const marker = uniqueMarker()
    const dir = project({ Sandboxfile: `FROM host\nWORKDIR .\n${devServer(marker, 'json-ok')}\n` })
    const p = new Live(['run', '--json'], { runtime, cwd: dir })
    const event = await p.waitFor('the url event', () => {
      const lines = p.stdout.split('\n').slice(0, -1) // complete lines only
      return lines.map((l) => JSON.parse(l)).find((e) => e.type === 'url')
    })
    expect(event).toEqual({ type: 'url', name: 'dev', url: expect.stringMatching(/^http:\/\/127\.0\.0\.1:\d+$/) })
    expect(await (await fetch(event.url)).text()).toBe('json-ok')
    expect(hostProcesses(marker).length).toBeGreaterThan(0)

    p.child.kill('SIGTERM')
    const { code, signal } = await p.exited_()
    expect({ code, signal }).toEqual({ code: 0, signal: null })
    const events = jsonLines(p.stdout)
    expect(events).toContainEqual({ type: 'info', message: expect.stringContaining('stopping') })
    expect(events.some((e) => e.type === 'error')).toBe(false)
    expect(hostProcesses(marker)).toEqual([])
    expect(stateDirs(p.pid)).toEqual([])
  }, TEST_MS)

  test('run with a failing RUN: exit 1 without waiting for Ctrl-C; nothing left', async () => {
    const marker = uniqueMarker()
    const dir = project({ Sandboxfile: `RUN sh -c "exit 9"\n${devServer(marker, 'never')}\n` })
    const p = new Live(['run'], { runtime, cwd: dir })
    const { code } = await p.exited_()
    expect(code).toBe(1)
    expect(p.stdout).not.toContain('dev: http')
    expect(hostProcesses(marker)).toEqual([])
    expect(stateDirs(p.pid)).toEqual([])
  }, TEST_MS)

  test('a runtime error (DEV dies before its port opens): exit 1, the whole message, no stack', async () => {
    const dir = project({ Sandboxfile: "DEV PORT=3000 sh -c 'echo dying-words; exit 1'\n" })
    const plain = new Live(['run'], { runtime, cwd: dir })
    expect((await plain.exited_()).code).toBe(1)
    expect(plain.stderr).toContain('error: dev exited with exit code 1 before port 3000 accepted a connection; its last output:\ndying-words\n')
    expect(plain.stderr).not.toMatch(/^\s+at /m)
    expect(stateDirs(plain.pid)).toEqual([])
    const json = cli(['run', '--json'], { runtime, cwd: dir })
    expect(json.code).toBe(1)
    expect(jsonLines(json.stdout).at(-1)).toMatchObject({ type: 'error', message: expect.stringMatching(/its last output:\ndying-words$/) })
  }, TEST_MS)

  test('a malformed Sandboxfile: exit 1 with the line number, for every command', () => {
    const dir = project({ Sandboxfile: 'FROM host\nRUN true\nBOGUS thing\nTEST true\n' })
    for (const args of [['run'], ['test'], ['exec', '--', 'true'], ['extract', '-o', 'out']]) {
      const r = cli(args, { runtime, cwd: dir })
      expect({ args, code: r.code }).toEqual({ args, code: 1 })
      expect(r.stderr).toContain('Sandboxfile:3: error: Unknown directive: BOGUS')
      expect(r.stdout).toBe('')
      const j = cli([...args.slice(0, 1), '--json', ...args.slice(1)], { runtime, cwd: dir })
      expect(j.code).toBe(1)
      expect(jsonLines(j.stdout)[0]).toMatchObject({ type: 'error', line: 3, message: 'Unknown directive: BOGUS' })
    }
    expect(existsSync(join(dir, 'out'))).toBe(false)
  }, TEST_MS)

  test('an unknown flag: exit 2 with a hint to --help', () => {
    const dir = project({ Sandboxfile: 'RUN true\nTEST true\n' })
    for (const args of [['run', '--bogus'], ['test', '--frobnicate'], ['exec', '--nope', '--', 'true'], ['extract', '-o', 'x', '-Z']]) {
      const r = cli(args, { runtime, cwd: dir })
      expect({ args, code: r.code }).toEqual({ args, code: 2 })
      expect(r.stderr).toContain('--help')
      expect(r.stdout).toBe('')
    }
  }, TEST_MS)
})

describe('test -w', () => {
  test('re-runs the tests when a file in WORKDIR changes; Ctrl-C exits with the last outcome', async () => {
    const dir = project({
      Sandboxfile: 'FROM host\nWORKDIR .\nTEST sh -c \'cat flag.txt; test "$(cat flag.txt)" = pass\'\n',
      'flag.txt': 'pass\n',
    })
    const p = new Live(['test', '-w'], { cwd: dir })
    await p.waitFor('the first run', () => p.stdout.includes('1 passed, 0 failed') && p.stderr.includes('watching'))
    writeFileSync(join(dir, 'flag.txt'), 'fail\n')
    await p.waitFor('the re-run', () => p.stdout.includes('0 passed, 1 failed'))
    expect(p.stdout).toContain('test-0 | fail')
    p.child.kill('SIGINT')
    const { code } = await p.exited_()
    expect(code).toBe(1) // the last run failed
    expect(p.stderr).toContain('stopping')
    expect(stateDirs(p.pid)).toEqual([])
  }, TEST_MS)
})
