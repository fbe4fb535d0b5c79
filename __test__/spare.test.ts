// Spares (docs/ARCHITECTURE.md "Spares"): once a sandbox has started, the
// next one's init is started ahead, with the host's part of the root already
// mounted. A sandbox that takes a spare must be exactly the sandbox a fresh
// init builds, and a spare that no longer fits the host must never be used.
//
// Runs as root (CI) and as an ordinary user (scripts/test-unprivileged.sh).
// Which init serves a sandbox is read from the host's /proc: a spare is a
// helper (a child of this process named bun-sandbox-init) that exists before
// the sandbox is asked for; a sandbox that takes it keeps it alive, one that
// does not kills it.
import { beforeAll, describe, expect, test } from 'bun:test'
import { spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { Sandbox, parseSandboxfile } from '..'
import { alive, initsOf, scratchPaths } from './support'

const REPO = join(import.meta.dir, '..')
const ROOT = process.getuid!() === 0
const { tempDir } = scratchPaths()

const config = parseSandboxfile('FROM host\nWORKDIR .\n')

/**
 * Helpers of this process alive before these tests began: a sandbox another
 * file's failed test left running is not counted here.
 */
let foreign = new Set<number>()
beforeAll(() => {
  foreign = new Set(helpers())
})

/**
 * The helpers (one per sandbox or spare) of this process, children of its
 * zygote (the one init it starts), that are still alive; given `pid`, the
 * inits whose parent it is (a helper's PID 1, orphans of init).
 */
function helpers(pid?: number): number[] {
  if (pid !== undefined) return initsOf(pid)
  return initsOf(process.pid).flatMap(initsOf).filter((p) => !foreign.has(p)).sort((a, b) => a - b)
}

/** A helper whose PID 1 lives: a spare, or a running sandbox's. */
function serving(helper: number): boolean {
  return helpers(helper).some(alive)
}

async function until(cond: () => boolean, ms = 5000): Promise<boolean> {
  const end = Date.now() + ms
  while (Date.now() < end) {
    if (cond()) return true
    await Bun.sleep(10)
  }
  return cond()
}

const STATE_ROOT = process.env.BUN_SANDBOX_STATE_DIR || `/tmp/bun-sandbox-${process.getuid!()}`

/** This process's state dirs in use (a sandbox's, or a spare's). */
function stateDirs(): string[] {
  if (!existsSync(STATE_ROOT)) return []
  return readdirSync(STATE_ROOT)
    .filter((n) => n.startsWith(`sb-${process.pid}-`))
    .map((n) => join(STATE_ROOT, n))
}

/** Starts and stops a sandbox of `options`, then waits until one helper (its spare) is left. */
async function leaveSpare(cwd: string, options: Record<string, unknown> = {}): Promise<number> {
  const sb = new Sandbox(config, { cwd, ...options })
  expect((await sb.exec(['true'])).exitCode).toBe(0)
  await sb.stop()
  // The stopped sandbox's helper goes; the spare's stays, with its PID 1.
  expect(await until(() => helpers().length === 1 && serving(helpers()[0]))).toBe(true)
  return helpers()[0]
}

/** A new sandbox of `env` reads `file` as the host has it now: from a fresh init, the spare killed. */
async function seesHostNow(proj: string, env: Record<string, string>, spare: number, file: string, content: string) {
  const sb = new Sandbox(config, { cwd: proj, env })
  try {
    expect(await sb.exec(['cat', file])).toEqual({ exitCode: 0, stdout: content, stderr: '' })
    expect(alive(spare)).toBe(false)
  } finally {
    await sb.stop()
  }
}

/**
 * What a sandbox's mount table says, without ids and with its state dir's
 * name generalized, sorted: the table lists mounts in the order they were
 * made, and a spare made the host's part first.
 */
function mountTable(text: string): string[] {
  return text
    .trim()
    .split('\n')
    .map((line) => {
      const [left, right] = line.split(' - ')
      const f = left.split(' ')
      return `${f[3]} ${f[4]} ${f[5]} - ${right}`.replace(/sb-\d+-\d+/g, 'sb-N')
    })
    .sort()
}

describe('spares', () => {
  test('a sandbox that takes the spare has the same mounts as one built by a fresh init, and keeps it', async () => {
    const proj = tempDir('bsb-spare-same-')
    // A disk limit makes a different root: the next sandbox cannot use its
    // spare and starts a fresh init, whose own spare the one after takes.
    await leaveSpare(proj, { limits: { diskBytes: 64 * 1024 * 1024 } })
    const fresh = new Sandbox(config, { cwd: proj })
    const freshTable = await fresh.exec(['cat', '/proc/self/mountinfo'])
    // The network as well: `lo` alone, up (a spare brings it up before its plan comes).
    const net = ['/bin/sh', '-c', 'ls /sys/class/net && cat /sys/class/net/lo/flags']
    expect(await fresh.exec(net)).toEqual({ exitCode: 0, stdout: 'lo\n0x9\n', stderr: '' })
    await fresh.stop()
    expect(await until(() => helpers().length === 1 && serving(helpers()[0]))).toBe(true)
    const [spare] = helpers()

    const fromSpare = new Sandbox(config, { cwd: proj })
    try {
      const table = await fromSpare.exec(['cat', '/proc/self/mountinfo'])
      expect(alive(spare)).toBe(true)
      expect(table.exitCode).toBe(0)
      expect(mountTable(table.stdout)).toEqual(mountTable(freshTable.stdout))
      expect(await fromSpare.exec(net)).toEqual({ exitCode: 0, stdout: 'lo\n0x9\n', stderr: '' })
      // And it behaves like one: the WORKDIR's layer works, the host is untouched.
      const w = await fromSpare.exec(['/bin/sh', '-c', 'echo hi > made.txt && cat made.txt && id -u && uname -n'])
      expect(w).toEqual({ exitCode: 0, stdout: `hi\n${ROOT ? 1000 : process.getuid!()}\nsandbox\n`, stderr: '' })
      expect(existsSync(join(proj, 'made.txt'))).toBe(false)
    } finally {
      await fromSpare.stop()
    }
    expect(await until(() => !alive(spare))).toBe(true)
  })

  test('a sandbox that took a spare begins the next one before its first command ends; a fresh one only after', async () => {
    const proj = tempDir('bsb-spare-series-')
    const spare = await leaveSpare(proj)
    // While its first command runs, the sandbox's own helper (the spare it
    // took) and the next spare's serve.
    const sb = new Sandbox(config, { cwd: proj })
    try {
      let done = false
      const first = sb.exec(['sleep', '2']).finally(() => (done = true))
      expect(await until(() => helpers().length === 2 && helpers().every(serving))).toBe(true)
      expect(done).toBe(false)
      expect(helpers()).toContain(spare)
      expect((await first).exitCode).toBe(0)
    } finally {
      await sb.stop()
    }
    // One that cannot use the spare (a disk limit makes another root)
    // starts fresh, and begins the next spare only once its first command
    // is done.
    const other = new Sandbox(config, { cwd: proj, limits: { diskBytes: 64 * 1024 * 1024 } })
    try {
      let done = false
      const first = other.exec(['sleep', '1']).finally(() => (done = true))
      expect(await until(() => helpers().length === 1 && serving(helpers()[0]))).toBe(true)
      await Bun.sleep(300)
      expect(done).toBe(false)
      expect(helpers().length).toBe(1)
      expect((await first).exitCode).toBe(0)
      expect(await until(() => helpers().length === 2 && helpers().every(serving))).toBe(true)
    } finally {
      await other.stop()
    }
  }, 15_000)

  test('in a series on one project the spare builds the WORKDIR layer too; the sandbox sees the project as it is now', async () => {
    const proj = tempDir('bsb-spare-layer-')
    writeFileSync(join(proj, 'a.txt'), 'one\n')
    // OUTPUT makes diff() report the changes (a spare is the same either way).
    const outputs = parseSandboxfile('FROM host\nWORKDIR .\nOUTPUT *.txt\n')
    // The first sandbox starts fresh: its spare is the host part alone.
    await leaveSpare(proj)
    expect(stateDirs()).toEqual([])
    // The second takes it and, the second of a series on this project,
    // begins the next with the WORKDIR's layer, in a state dir of its own.
    const spare = await leaveSpare(proj)
    const spareDirs = stateDirs()
    expect(spareDirs.length).toBe(1)
    // The host changes the project after the spare mounted it.
    writeFileSync(join(proj, 'a.txt'), 'two\n')
    writeFileSync(join(proj, 'b.txt'), 'new\n')
    const sb = new Sandbox(outputs, { cwd: proj })
    try {
      const r = await sb.exec(['/bin/sh', '-c', 'cat a.txt b.txt && echo made > c.txt && echo three > a.txt'])
      expect(r).toEqual({ exitCode: 0, stdout: 'two\nnew\n', stderr: '' })
      expect(alive(spare)).toBe(true)
      expect(stateDirs()).toContain(spareDirs[0])
      expect(await sb.diff()).toEqual({ added: ['c.txt'], modified: ['a.txt'], deleted: [] })
      expect(readFileSync(join(proj, 'a.txt'), 'utf8')).toBe('two\n')
      expect(existsSync(join(proj, 'c.txt'))).toBe(false)
    } finally {
      await sb.stop()
    }
    expect(await until(() => !existsSync(spareDirs[0]) && helpers().length === 1 && serving(helpers()[0]))).toBe(true)
    // A sandbox of another project cannot use the next one (its layer is
    // of this project): it starts fresh, and that spare and its state dir go.
    const [next] = helpers()
    const nextDirs = stateDirs()
    expect(nextDirs.length).toBe(1)
    const other = tempDir('bsb-spare-layer-other-')
    writeFileSync(join(other, 'x.txt'), 'other\n')
    const sb2 = new Sandbox(outputs, { cwd: other })
    try {
      expect(await sb2.exec(['/bin/sh', '-c', 'cat x.txt; test -e a.txt'])).toEqual({ exitCode: 1, stdout: 'other\n', stderr: '' })
      expect(alive(next)).toBe(false)
      expect(await sb2.diff()).toEqual({ added: [], modified: [], deleted: [] })
    } finally {
      await sb2.stop()
    }
    expect(await until(() => !existsSync(nextDirs[0]))).toBe(true)
  })

  test('a spare killed from outside is not used: the next sandbox starts', async () => {
    const proj = tempDir('bsb-spare-killed-')
    const spare = await leaveSpare(proj)
    process.kill(spare, 'SIGKILL')
    expect(await until(() => !alive(spare))).toBe(true)
    const sb = new Sandbox(config, { cwd: proj })
    try {
      expect(await sb.exec(['echo', 'fine'])).toEqual({ exitCode: 0, stdout: 'fine\n', stderr: '' })
    } finally {
      await sb.stop()
    }
  })

  test('a spare that dies after it was taken, before it is ready: the sandbox starts again without it', async () => {
    const proj = tempDir('bsb-spare-dies-')
    const spare = await leaveSpare(proj)
    const [pid1] = helpers(spare)
    // Stopped, it still looks alive when it is taken; the plan is sent to it,
    // and it dies before it reads it.
    process.kill(pid1, 'SIGSTOP')
    const sb = new Sandbox(config, { cwd: proj })
    try {
      const ran = sb.exec(['echo', 'fine'])
      await Bun.sleep(200)
      expect(alive(spare)).toBe(true)
      process.kill(pid1, 'SIGKILL')
      expect(await ran).toEqual({ exitCode: 0, stdout: 'fine\n', stderr: '' })
      expect(await until(() => !alive(spare))).toBe(true)
    } finally {
      await sb.stop()
    }
  })

  test.skipIf(!ROOT)('a mount made on the host after the spare was made is seen: the spare is discarded', async () => {
    // A tool directory on PATH under /tmp is bound in with what is mounted
    // below it. The spare bound it before the mount existed.
    const proj = tempDir('bsb-spare-mount-')
    // Outside the WORKDIR, which may have nothing mounted in it.
    const tools = join(tempDir('bsb-spare-mount-tools-'), 'tools')
    const sub = join(tools, 'sub')
    mkdirSync(sub, { recursive: true })
    const env = { PATH: `${tools}:/usr/bin:/bin` }
    const spare = await leaveSpare(proj, { env })
    const mount = spawnSync('mount', ['-t', 'tmpfs', 'bsb-spare-test', sub])
    expect(mount.status).toBe(0)
    try {
      writeFileSync(join(sub, 'marker'), 'mounted after the spare\n')
      await seesHostNow(proj, env, spare, join(sub, 'marker'), 'mounted after the spare\n')
    } finally {
      spawnSync('umount', [sub])
    }
  })

  test('a bound host directory replaced after the spare was made is seen: the spare is discarded', async () => {
    // The same path, another directory: the spare bound the old one.
    const proj = tempDir('bsb-spare-replaced-')
    const tools = join(tempDir('bsb-spare-replaced-tools-'), 'tools')
    mkdirSync(tools)
    writeFileSync(join(tools, 'which'), 'old\n')
    const env = { PATH: `${tools}:/usr/bin:/bin` }
    const spare = await leaveSpare(proj, { env })
    renameSync(tools, `${tools}.old`)
    mkdirSync(tools)
    writeFileSync(join(tools, 'which'), 'new\n')
    await seesHostNow(proj, env, spare, join(tools, 'which'), 'new\n')
  })

  test('spare: false or BUN_SANDBOX_SPARE=0: no spare is made; by default one is, and it goes with the process', () => {
    const proj = tempDir('bsb-spare-off-')
    const script = join(proj, 'count.mjs')
    writeFileSync(
      script,
      `import { createRequire } from 'node:module'
import { readdirSync, readFileSync } from 'node:fs'
const { Sandbox, parseSandboxfile } = createRequire(import.meta.url)(${JSON.stringify(REPO)})
const initsOf = (pid) => readdirSync('/proc').filter((p) => {
  try {
    const s = readFileSync('/proc/' + p + '/status', 'utf8')
    return /^Name:\\s+bun-sandbox-ini/m.test(s) && !/^State:\\s+Z/m.test(s) && Number(/^PPid:\\s+(\\d+)/m.exec(s)[1]) === pid
  } catch { return false }
}).map(Number)
// The helpers: children of the zygote, the one init this process starts.
const helpers = () => initsOf(process.pid).flatMap(initsOf).length
const options = process.argv[2] === 'no-spare' ? { spare: false } : {}
const sb = new Sandbox(parseSandboxfile('FROM host\\nWORKDIR .\\n'), { cwd: ${JSON.stringify(proj)}, ...options })
await sb.exec(['true'])
const end = Date.now() + 1000
while (helpers() < 2 && Date.now() < end) await new Promise((r) => setTimeout(r, 10))
const running = helpers()
await sb.stop()
console.log(running)
`,
    )
    const run = (extra: Record<string, string>, ...args: string[]) => {
      const r = spawnSync(process.execPath, [script, ...args], { cwd: proj, env: { ...process.env, ...extra }, encoding: 'utf8' })
      expect(r.stderr).toBe('')
      return Number(r.stdout.trim())
    }
    const before = new Set(helpers(1))
    // The sandbox's helper, and the spare's.
    expect(run({})).toBe(2)
    expect(run({ BUN_SANDBOX_SPARE: '0' })).toBe(1)
    expect(run({}, 'no-spare')).toBe(1)
    // Nothing of either run is left: orphans would have become init's children.
    expect(helpers(1).filter((p) => !before.has(p))).toEqual([])
  })
})
