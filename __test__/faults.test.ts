// Bad input and faults around a sandbox: each gets a clear error, and the host loses nothing.
import { afterEach, describe, expect, test } from 'bun:test'
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { spawn } from 'node:child_process'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Sandbox, parseSandboxfile } from '..'
import { alive, initsOf } from './support'

const project = () => mkdtempSync(join(tmpdir(), 'bun-sandbox-faults-'))
const stateRoot = process.env.BUN_SANDBOX_STATE_DIR || `/tmp/bun-sandbox-${process.getuid!()}`
const config = (extra = '') => parseSandboxfile(`FROM host\nWORKDIR .\n${extra}`)

/**
 * The sandboxes of the running test, stopped after it also when it failed
 * half-way: one left running would be counted by the files after this one.
 */
const opened: Sandbox[] = []
afterEach(async () => {
  await Promise.all(opened.splice(0).map((sb) => sb.stop().catch(() => {})))
})
function sandbox(...args: ConstructorParameters<typeof Sandbox>): Sandbox {
  const sb = new Sandbox(...args)
  opened.push(sb)
  return sb
}

describe('options are checked before anything starts', () => {
  const bad: [string, any, RegExp][] = [
    ['negative pids', { limits: { pids: -1 } }, /limits.pids must be a positive integer/],
    ['fractional timeout', { limits: { timeoutMs: 1.5 } }, /limits.timeoutMs must be a positive integer/],
    ['absurd cpuSeconds', { limits: { cpuSeconds: 1e300 } }, /limits.cpuSeconds must be a positive integer/],
    ['diskBytes below 1 MiB', { limits: { diskBytes: 1000 } }, /limits.diskBytes must be at least 1048576 \(1 MiB\), not 1000/],
    ['negative memoryBytes', { limits: { memoryBytes: -1 } }, /limits.memoryBytes must be a positive integer/],
    ['onViolation not a function', { onViolation: 42 }, /options.onViolation must be a function/],
    ['unknown isolation', { isolation: 'some' }, /options.isolation must be "full" or "none"/],
    ['uid not an integer', { uid: -5 }, /options.uid must be a non-negative integer/],
    ['env not strings', { env: { A: 1 } }, /options.env must map names to strings/],
  ]
  for (const [name, options, message] of bad) {
    test(name, () => {
      expect(() => sandbox(config(), { cwd: project(), ...options })).toThrow(message)
    })
  }

  test('an invalid Sandboxfile is refused with the validation errors', () => {
    expect(() => sandbox(config('NET *.com'), { cwd: project() })).toThrow(/not valid[\s\S]*\*\.com/)
  })

  test('exec arguments', async () => {
    const sb = sandbox(config(), { cwd: project() })
    expect(() => sb.exec([] as any)).toThrow(/must not be an empty array/)
    expect(() => sb.exec(42 as any)).toThrow(TypeError)
    expect(() => sb.exec('true', { timeoutMs: -1 })).toThrow(/timeoutMs must be a positive integer/)
    await sb.stop()
  })
})

describe('FROM', () => {
  test('a directory that is not a root filesystem', async () => {
    const dir = project()
    mkdirSync(join(dir, 'notroot'))
    const sb = sandbox(parseSandboxfile('FROM ./notroot\nWORKDIR .'), { cwd: dir })
    await expect(sb.exec('true')).rejects.toThrow(/FROM .*notroot: not a root filesystem \(it has no bin\/sh\)/)
  })

  test('an image reference is refused before anything starts', () => {
    expect(() => sandbox(parseSandboxfile('FROM ubuntu:22.04'), { cwd: project() })).toThrow(/image references are not supported/)
  })
})

/** The helpers of this test process's sandboxes: children of its zygote, the one init it starts. */
function ourInits(): number[] {
  return initsOf(process.pid).flatMap(initsOf)
}

describe('init killed from outside', () => {
  test('the Sandbox reports it and stop() still cleans up', async () => {
    const before = new Set(existsSync(stateRoot) ? readdirSync(stateRoot) : [])
    const sb = sandbox(config(), { cwd: project() })
    expect((await sb.exec('cat /proc/1/status')).stdout).toMatch(/Name:\s+bun-sandbox-ini/)
    const ours = readdirSync(stateRoot).filter((d) => !before.has(d))
    expect(ours.length).toBe(1)
    const inits = ourInits()
    expect(inits.length).toBeGreaterThan(0)
    for (const pid of inits) process.kill(pid, 'SIGKILL')
    // A signal takes effect when the killed process next runs: wait until
    // each is dead (a zombie, or reaped), so PID 1 has had its parent-death
    // signal, before asking the sandbox for more.
    for (let i = 0; i < 500 && inits.some(alive); i++) await Bun.sleep(10)
    expect(inits.filter(alive)).toEqual([])
    await expect(sb.exec('true')).rejects.toThrow(/ended unexpectedly/)
    expect(sb.isRunning()).toBe(false)
    await sb.stop()
    expect(existsSync(join(stateRoot, ours[0]))).toBe(false)
  })
})

describe('the zygote (the one init a process starts, which forks each helper) killed or hung', () => {
  /** Kills `pids` and waits until none runs. */
  async function killAll(pids: number[]) {
    for (const pid of pids) process.kill(pid, 'SIGKILL')
    for (let i = 0; i < 500 && pids.some(alive); i++) await Bun.sleep(10)
    expect(pids.filter(alive)).toEqual([])
  }

  test('killed: its sandboxes report that init ended, and the next sandbox starts with a new one', async () => {
    const sb = sandbox(config(), { cwd: project() })
    expect((await sb.exec('echo up')).stdout).toBe('up\n')
    const zygotes = initsOf(process.pid)
    expect(zygotes.length).toBeGreaterThan(0)
    const helpers = zygotes.flatMap(initsOf)
    expect(helpers.length).toBeGreaterThan(0)
    await killAll(zygotes)
    // Their helpers went with them (parent-death signal), and each PID 1 with its helper.
    for (let i = 0; i < 500 && helpers.some(alive); i++) await Bun.sleep(10)
    expect(helpers.filter(alive)).toEqual([])
    await expect(sb.exec('true')).rejects.toThrow(/ended unexpectedly/)
    await sb.stop()
    const next = sandbox(config(), { cwd: project() })
    expect((await next.exec('echo again')).stdout).toBe('again\n')
    const now = initsOf(process.pid)
    expect(now.length).toBe(1)
    expect(zygotes).not.toContain(now[0])
  })

  test('stopped: a start waits five seconds for its answer, then it is killed and a new one forks the helper', async () => {
    const first = sandbox(config(), { cwd: project() })
    await first.exec('true')
    const zygotes = initsOf(process.pid)
    for (const pid of zygotes) process.kill(pid, 'SIGSTOP')
    // No helper left to take as a spare: the next start asks the zygote.
    await killAll(zygotes.flatMap(initsOf))
    const sb = sandbox(config(), { cwd: project() })
    expect((await sb.exec('echo up')).stdout).toBe('up\n')
    expect(zygotes.filter(alive)).toEqual([])
    expect(initsOf(process.pid).filter((p) => !zygotes.includes(p)).length).toBe(1)
  }, 20_000)

  test("a terminal's Ctrl-C (SIGINT to the host's process group) reaches the host, not the sandbox: it still answers", async () => {
    const dir = project()
    const script = join(dir, 'ctrl-c.mjs')
    writeFileSync(
      script,
      `import { createRequire } from 'node:module'
const { Sandbox, parseSandboxfile } = createRequire(import.meta.url)(${JSON.stringify(join(import.meta.dir, '..'))})
const sb = new Sandbox(parseSandboxfile('FROM host\\nWORKDIR .\\n'), { cwd: ${JSON.stringify(dir)} })
await sb.exec('true')
const keep = setInterval(() => {}, 1000)
process.on('SIGINT', async () => {
  const r = await sb.exec('echo after ctrl-c').catch((e) => ({ stdout: String(e.message) }))
  await sb.stop()
  clearInterval(keep)
  console.log(r.stdout.trim())
})
console.log('ready')
`,
    )
    // A process group of its own, as a shell gives a foreground job.
    const child = spawn(process.execPath, [script], { cwd: dir, detached: true, stdio: ['ignore', 'pipe', 'inherit'] })
    let out = ''
    child.stdout.on('data', (d) => (out += d))
    for (let i = 0; i < 500 && !out.includes('ready'); i++) await Bun.sleep(10)
    expect(out).toBe('ready\n')
    process.kill(-child.pid!, 'SIGINT')
    await new Promise((r) => child.on('exit', r))
    expect(out).toBe('ready\nafter ctrl-c\n')
  })
})

describe('limits', () => {
  test('memoryBytes: a 1 GiB allocation fails inside, the sandbox still answers, the host is fine', async () => {
    const sb = sandbox(config(), { cwd: project(), limits: { memoryBytes: 256 * 1024 * 1024 } })
    const r = await sb.exec(['/usr/bin/node', '-e', 'const b = Buffer.alloc(1024 * 1024 * 1024, 1); console.log(b.length)'])
    expect(r.exitCode).not.toBe(0)
    expect(r.stdout).toBe('')
    expect((await sb.exec('echo alive')).stdout).toBe('alive\n')
    // Within the limit, memory works.
    const ok = await sb.exec(['/usr/bin/node', '-e', 'console.log(Buffer.alloc(64 * 1024 * 1024, 1).length)'])
    expect(ok).toEqual({ exitCode: 0, stdout: `${64 * 1024 * 1024}\n`, stderr: '' })
    await sb.stop()
  }, 30_000)

  // A root host user's sandbox is in a memory cgroup of its own (an ordinary user's has per-process
  // RLIMIT_DATA alone: no cgroup is delegated on these hosts).
  test.if(process.getuid!() === 0)('memoryBytes binds the processes together: the kernel kills one, onViolation says so, the sandbox answers', async () => {
    const events: any[] = []
    const limit = 256 * 1024 * 1024
    const sb = sandbox(config(), { cwd: project(), limits: { memoryBytes: limit }, onViolation: (e) => events.push(e) })
    // Six processes of 80 MiB each: every one is within the limit, together they are not.
    const hold = "const b = Buffer.alloc(80 * 1024 * 1024, 1); setTimeout(() => console.log(b.length), 1500)"
    const r = await sb.exec(['/bin/sh', '-c', `for i in 1 2 3 4 5 6; do /usr/bin/node -e '${hold}' & done; wait`])
    const held = r.stdout.split('\n').filter((l) => l === String(80 * 1024 * 1024)).length
    expect(held).toBeLessThan(6)
    for (let i = 0; i < 40 && events.length === 0; i++) await Bun.sleep(50)
    expect(events.length).toBeGreaterThan(0)
    for (const e of events) {
      expect(e).toEqual({ kind: 'limit', detail: expect.stringMatching(/^the sandbox's processes together reached limits\.memoryBytes \(268435456 bytes\): the kernel killed (one|\d+) of them$/) })
    }
    expect((await sb.exec('echo alive')).stdout).toBe('alive\n')
    // Each alone still fits.
    const one = await sb.exec(['/usr/bin/node', '-e', hold])
    expect(one).toEqual({ exitCode: 0, stdout: `${80 * 1024 * 1024}\n`, stderr: '' })
    await sb.stop()
  }, 30_000)

  test.if(process.getuid!() === 0)('memoryBytes counts what the processes write to tmpfs: a fill of /tmp is killed at the limit', async () => {
    const events: any[] = []
    const sb = sandbox(config(), { cwd: project(), limits: { memoryBytes: 128 * 1024 * 1024 }, onViolation: (e) => events.push(e) })
    const r = await sb.exec(['/bin/sh', '-c', 'dd if=/dev/zero of=/tmp/fill bs=1M count=300 2>/dev/null; echo $?; stat -c %s /tmp/fill'])
    const [status, size] = r.stdout.trim().split('\n').map(Number)
    // dd was killed (128 + SIGKILL), and what it wrote stayed below the limit.
    expect(status).toBe(137)
    expect(size).toBeLessThan(128 * 1024 * 1024)
    for (let i = 0; i < 40 && events.length === 0; i++) await Bun.sleep(50)
    expect(events[0]).toEqual({ kind: 'limit', detail: "the sandbox's processes together reached limits.memoryBytes (134217728 bytes): the kernel killed one of them" })
    expect((await sb.exec('rm /tmp/fill && echo alive')).stdout).toBe('alive\n')
    await sb.stop()
  }, 30_000)

  test('the OOM killer takes a command before PID 1: a command and what it forks run at oom_score_adj 500, PID 1 at 0', async () => {
    const sb = sandbox(config(), { cwd: project() })
    const running = sb.exec(['sleep', '30'])
    // PID 1 sets it before it reports the command started, which getStatus() shows.
    let pid = 0
    for (let i = 0; i < 200 && !pid; i++) {
      pid = sb.getStatus()[0]?.pid ?? 0
      if (!pid) await Bun.sleep(10)
    }
    expect(readFileSync(`/proc/${pid}/oom_score_adj`, 'utf8')).toBe('500\n')
    // From a command's first instruction, and in what it forks at once (a
    // score written after its execve would come too late for those).
    for (let i = 0; i < 50; i++) {
      const r = await sb.exec(['/bin/sh', '-c', 'cat /proc/self/oom_score_adj & cat /proc/self/oom_score_adj; wait'])
      expect(r.stdout).toBe('500\n500\n')
    }
    // PID 1 keeps the default, and lowering it again needs a privilege no command has.
    const r = await sb.exec(['/bin/sh', '-c', 'cat /proc/1/oom_score_adj; echo -100 > /proc/self/oom_score_adj || echo refused'])
    expect(r.stdout).toBe('0\nrefused\n')
    await sb.stop()
    expect((await running).exitCode).toBe(143)
  })

  test('a timeout is reported through onViolation as a limit', async () => {
    const events: any[] = []
    const sb = sandbox(config(), { cwd: project(), onViolation: (e) => events.push(e) })
    const r = await sb.exec('sleep 30', { timeoutMs: 200 })
    expect(r.exitCode).toBeNull()
    expect(events).toEqual([{ kind: 'limit', detail: 'exec ran past its time limit of 200 ms and was killed, with what it started' }])
    await sb.stop()
  })
})

describe('two copies of bun-sandbox in one process', () => {
  // Two versions of the package in one dependency tree load two addons, each
  // counting its state dirs and cgroups from 0 under the same pid.
  test('their sandboxes, started side by side, each get a state dir and cgroups of their own', async () => {
    const repo = join(import.meta.dir, '..')
    const copy = mkdtempSync(join(tmpdir(), 'bun-sandbox-copy-'))
    for (const f of readdirSync(repo).filter((f) => f.endsWith('.node') || f === 'index.js' || f === 'package.json')) {
      copyFileSync(join(repo, f), join(copy, f))
    }
    // Its init beside it, as in a platform package: the newest build.
    const init = ['release', 'debug']
      .map((p) => join(repo, 'target', p, 'bun-sandbox-init'))
      .filter((p) => existsSync(p))
      .sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs)[0]
    copyFileSync(init, join(copy, 'bun-sandbox-init'))
    chmodSync(join(copy, 'bun-sandbox-init'), 0o755)
    const other = require(join(copy, 'index.js'))
    expect(other.Sandbox).not.toBe(Sandbox)
    // The names the copy's count begins with are taken (as by dirs a process
    // of the same pid left).
    mkdirSync(stateRoot, { recursive: true, mode: 0o700 })
    const taken = Array.from({ length: 40 }, (_, i) => join(stateRoot, `sb-${process.pid}-${i}`)).filter((d) => !existsSync(d))
    for (const d of taken) mkdirSync(d)
    const theirs: any[] = []
    const boxes: any[] = []
    for (let i = 0; i < 4; i++) {
      boxes.push(sandbox(config(), { cwd: project() }))
      const sb = new other.Sandbox(other.parseSandboxfile('FROM host\nWORKDIR .\n'), { cwd: project() })
      theirs.push(sb)
      boxes.push(sb)
    }
    try {
      const results = await Promise.all(boxes.map((sb) => sb.exec(['echo', 'ok'])))
      expect(results.map((r) => r.stdout)).toEqual(boxes.map(() => 'ok\n'))
      // A second round: the spares of both copies, and their state dirs.
      const again = await Promise.all(boxes.map((sb) => sb.exec(['echo', 'again'])))
      expect(again.map((r) => r.exitCode)).toEqual(boxes.map(() => 0))
    } finally {
      await Promise.all(theirs.map((sb) => sb.stop()))
      for (const d of [...taken, copy]) rmSync(d, { recursive: true, force: true })
    }
  }, 30_000)
})
