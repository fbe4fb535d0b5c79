// The hostile suite of SPEC §3 (DESIGN "Tests"): every test attempts an escape
// from a real sandbox and asserts the precise way it fails (the errno text,
// the exit code, the exact output), never just "non-zero".
//
// Runs as root (CI) and as an ordinary user (scripts/test-unprivileged.sh);
// expectations that legitimately differ between the two are computed from
// process.getuid(). Processes a test starts on the host are found again by
// unique marker arguments (`sleep 1234.<tag>`), with bounded polling, never a
// fixed sleep.
import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { spawnSync } from 'node:child_process'
import {
  accessSync,
  constants,
  existsSync,
  lstatSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs'
import net from 'node:net'
import { homedir } from 'node:os'
import { basename, dirname, join } from 'node:path'
import { Sandbox, parseSandboxfile } from '..'
import { alive, initTree, scratchPaths } from './support'

const REPO = join(import.meta.dir, '..')
const HOST_UID = process.getuid!()
const HOST_GID = process.getgid!()
// SPEC §3 "Identity": a root host user is 1000 inside, anyone else is themselves.
const INNER_UID = HOST_UID === 0 ? 1000 : HOST_UID
const INNER_GID = HOST_GID === 0 ? 1000 : HOST_GID
// `python3` on PATH may be a pyenv shim under the (hidden) /root: only the system one works inside.
const PY = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : undefined
const NO_PY = ' [skipped: /usr/bin/python3 is missing, and a python3 elsewhere on PATH may live in the hidden home]'
const STATE_ROOT = process.env.BUN_SANDBOX_STATE_DIR || `/tmp/bun-sandbox-${HOST_UID}`
// Unique per run: marker arguments and probe file names.
const TAG = `${process.pid}${Math.floor(Math.random() * 1e6)}`
// A root host user's sandbox gets the host's root filesystem as one copy-on-write overlay (`/`),
// whose host directories keep their owners (nobody inside); an ordinary user's gets a tmpfs `/`
// with an overlay per top-level directory, whose own top is the user's (docs/ARCHITECTURE.md).
const WHOLE_ROOT = HOST_UID === 0

/**
 * Whether an ordinary user's sandbox layers the top-level host directory `d` copy-on-write: when
 * the user may write to it or owns an entry of it (where anything can be written inside); any
 * other is bound read-only (docs/ARCHITECTURE.md, "Top-level directories").
 */
function layered(d: string): boolean {
  try {
    if (statSync(d).uid === HOST_UID) return true
    accessSync(d, constants.W_OK)
    return true
  } catch {}
  try {
    return readdirSync(d).some((n) => {
      const st = lstatSync(join(d, n), { throwIfNoEntry: false })
      return !st || st.uid === HOST_UID
    })
  } catch {
    return true
  }
}
const SANDBOXFILE = 'FROM host\nWORKDIR .\n'

const { tempDir, removeAfter } = scratchPaths()

function newSandbox(cwd: string, options: Record<string, unknown> = {}): Sandbox {
  return new Sandbox(parseSandboxfile(SANDBOXFILE), { cwd, ...options })
}

function py(sb: Sandbox, code: string, opts?: { env?: Record<string, string>; timeoutMs?: number }) {
  return sb.exec([PY!, '-c', code], opts)
}

/** The state dirs this process (or `pid`) has under the state root. */
function stateDirs(pid = process.pid): string[] {
  if (!existsSync(STATE_ROOT)) return []
  return readdirSync(STATE_ROOT)
    .filter((n) => n.startsWith(`sb-${pid}-`))
    .map((n) => join(STATE_ROOT, n))
}

/** Host processes whose command line is exactly `args` (`ps -eo pid,args` lines). */
function hostProcesses(args: string): string[] {
  const ps = spawnSync('ps', ['-eo', 'pid,args'], { encoding: 'utf8' })
  if (ps.status !== 0) throw new Error(`ps failed: ${ps.stderr}`)
  return ps.stdout.split('\n').filter((l) => l.trim().replace(/^\d+\s+/, '') === args)
}

/** Polls `cond` every 25 ms for at most `ms`; returns its last value. */
async function waitFor(cond: () => boolean, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms
  for (;;) {
    if (cond()) return true
    if (Date.now() > deadline) return false
    await Bun.sleep(25)
  }
}

// ---------------------------------------------------------------------------
describe('filesystem', () => {
  let proj: string
  let hostTmp: string
  let hostSecret: string
  let homeMarker: string
  let sb: Sandbox
  const probes = ['/usr', '/etc', '', '/usr/bin'].map((d) => `${d}/bsb-probe-${TAG}`)

  beforeAll(() => {
    proj = tempDir('bsb-iso-fs-')
    writeFileSync(join(proj, 'existing.txt'), 'original\n')
    writeFileSync(join(proj, 'doomed.txt'), 'keep me\n')
    hostTmp = tempDir('bsb-iso-host-')
    hostSecret = join(hostTmp, 'secret.txt')
    writeFileSync(hostSecret, 'host secret\n')
    symlinkSync(hostSecret, join(proj, 'link-to-host-tmp'))
    // Something in the host home, so "home is empty inside" means something.
    homeMarker = join(homedir(), `.bsb-isolation-probe-${TAG}`)
    writeFileSync(homeMarker, 'host home file\n')
    removeAfter(homeMarker)
    process.env.BSB_HOST_ONLY_VARIABLE = 'host value'
    // A PATH with nothing under /tmp or a home: tool directories there are
    // bound in (read-only) and would show in /tmp; that has its own test.
    sb = newSandbox(proj, { env: { PATH: '/usr/local/bin:/usr/bin:/bin' } })
  })
  afterAll(async () => {
    await sb.stop()
    delete process.env.BSB_HOST_ONLY_VARIABLE
    // A probe that reached the host is a failure reported below; never leave it there.
    for (const p of probes) rmSync(p, { force: true })
  })

  test("a file in the host's /tmp is invisible, and /tmp holds only the project's path", async () => {
    const r = await sb.exec(['cat', hostSecret])
    expect(r).toEqual({ exitCode: 1, stdout: '', stderr: `cat: ${hostSecret}: No such file or directory\n` })
    const ls = await sb.exec(['ls', '-A', '/tmp'])
    expect(ls.exitCode).toBe(0)
    if (dirname(proj) === '/tmp') {
      // No host temp files, no state dir (/tmp/bun-sandbox-<uid>): only the WORKDIR's ancestor.
      expect(ls.stdout).toBe(`${basename(proj)}\n`)
    } else {
      expect(ls.stdout.split('\n')).not.toContain(basename(hostTmp))
    }
  })

  test('a PATH directory under /tmp is bound in read-only, with the files its symlinks point to; nothing beside them', async () => {
    const tools = tempDir('bsb-iso-tools-')
    mkdirSync(join(tools, 'bin'))
    mkdirSync(join(tools, 'pkg'))
    writeFileSync(join(tools, 'pkg', 'hello.sh'), '#!/bin/sh\necho hello from a tool\n', { mode: 0o755 })
    symlinkSync('../pkg/hello.sh', join(tools, 'bin', 'hello'))
    writeFileSync(join(tools, 'beside.txt'), 'not a tool\n')
    // Beside a tool's target, as a credential store beside a helper script.
    writeFileSync(join(tools, 'pkg', 'credentials'), 'token\n', { mode: 0o600 })
    const box = newSandbox(tempDir('bsb-iso-tp-'), { env: { PATH: `${join(tools, 'bin')}:/usr/bin:/bin` } })
    try {
      expect(await box.exec(['hello'])).toEqual({ exitCode: 0, stdout: 'hello from a tool\n', stderr: '' })
      const beside = await box.exec(['cat', join(tools, 'beside.txt')])
      expect(beside.exitCode).toBe(1)
      const store = await box.exec(['cat', join(tools, 'pkg', 'credentials')])
      expect(store).toEqual({ exitCode: 1, stdout: '', stderr: `cat: ${join(tools, 'pkg', 'credentials')}: No such file or directory\n` })
      const write = await box.exec(['/bin/sh', '-c', `echo x > ${join(tools, 'bin', 'new')}`])
      expect(write.stderr).toContain('Read-only file system')
    } finally {
      await box.stop()
    }
  })

  test('a symlink in the project to a host file resolves inside the sandbox, to nothing', async () => {
    const r = await sb.exec(['cat', 'link-to-host-tmp'])
    expect(r).toEqual({ exitCode: 1, stdout: '', stderr: 'cat: link-to-host-tmp: No such file or directory\n' })
  })

  test("the host home's contents are invisible: HOME is the same path, empty", async () => {
    expect(readFileSync(homeMarker, 'utf8')).toBe('host home file\n')
    const r = await sb.exec(['/bin/sh', '-c', 'printf "%s\\n" "$HOME"; ls -A "$HOME"; cat "$1"', 'sh', homeMarker])
    expect(r).toEqual({
      exitCode: 1,
      stdout: `${process.env.HOME}\n`,
      stderr: `cat: ${homeMarker}: No such file or directory\n`,
    })
  })

  test("/root, other users' homes and /run are empty", async () => {
    // The only entry of /home is the invoking user's own (empty) home, when it lives there.
    const home = process.env.HOME ?? ''
    const own = home.startsWith('/home/') ? `${home.split('/')[2]}\n` : ''
    const r = await sb.exec(['/bin/sh', '-c', 'ls -A /root; echo --; ls -A /home; echo --; ls -A /run'])
    expect(r).toEqual({ exitCode: 0, stdout: `--\n${own}--\n`, stderr: '' })
  })

  test('credential files of the host read empty (/etc/shadow, gshadow, sudoers, ssh host keys)', async () => {
    const files = ['/etc/shadow', '/etc/gshadow', '/etc/sudoers']
    if (existsSync('/etc/ssh')) {
      for (const n of readdirSync('/etc/ssh')) if (/^ssh_host_.*_key$/.test(n)) files.push(`/etc/ssh/${n}`)
    }
    const present = files.filter((f) => existsSync(f))
    expect(present).toContain('/etc/shadow')
    const r = await sb.exec(['/bin/sh', '-c', 'for f; do printf "%s %s\\n" "$f" "$(wc -c < "$f")"; done', 'sh', ...present])
    expect(r).toEqual({ exitCode: 0, stdout: present.map((f) => `${f} 0\n`).join(''), stderr: '' })
    const sudoersD = await sb.exec(['ls', '-A', '/etc/sudoers.d'])
    if (existsSync('/etc/sudoers.d')) expect(sudoersD).toEqual({ exitCode: 0, stdout: '', stderr: '' })
  })

  test("writes to the project stay in the sandbox; the host's copy is untouched", async () => {
    const r = await sb.exec([
      '/bin/sh',
      '-c',
      'echo new > new.txt && echo changed > existing.txt && rm doomed.txt && mkdir sub && echo x > sub/y && cat existing.txt && ls',
    ])
    expect(r).toEqual({ exitCode: 0, stdout: 'changed\nexisting.txt\nlink-to-host-tmp\nnew.txt\nsub\n', stderr: '' })
    expect(readFileSync(join(proj, 'existing.txt'), 'utf8')).toBe('original\n')
    expect(readFileSync(join(proj, 'doomed.txt'), 'utf8')).toBe('keep me\n')
    expect(existsSync(join(proj, 'new.txt'))).toBe(false)
    expect(existsSync(join(proj, 'sub'))).toBe(false)
  })

  test('writes to /, /usr and /etc stay in the sandbox; nothing appears on the host', async () => {
    const [usr, etc, root] = probes
    const r = await sb.exec(['/bin/sh', '-c', 'for f; do echo probe > "$f" && cat "$f"; done', 'sh', root, usr, etc])
    // / is the sandbox user's. A root host user's sandbox: /usr and /etc are the host root's,
    // nobody inside. An ordinary user's: the top of a layered directory is the user's, and one
    // that holds nothing of the user's is bound read-only.
    const refused = (f: string, why: string) => `sh: 1: cannot create ${f}: ${why}\n`
    const expected = WHOLE_ROOT
      ? { stdout: 'probe\n', stderr: refused(usr, 'Permission denied') + refused(etc, 'Permission denied') }
      : {
          stdout: 'probe\n' + [usr, etc].map((f) => (layered(dirname(f)) ? 'probe\n' : '')).join(''),
          stderr: [usr, etc].map((f) => (layered(dirname(f)) ? '' : refused(f, 'Read-only file system'))).join(''),
        }
    expect(r).toEqual({ exitCode: expected.stderr ? 2 : 0, ...expected })
    for (const p of [usr, etc, root]) expect(existsSync(p)).toBe(false)
  })

  test.skipIf(!WHOLE_ROOT)("a root host user's sandbox: / is one copy-on-write overlay of the host's root filesystem; its lost+found is hidden", async () => {
    // mountinfo: field 5 is the mount point, field 9 the filesystem's type.
    const r = await sb.exec([
      '/bin/sh',
      '-c',
      `awk '$5 == "/" || $5 == "/lost+found" { print $5, $9 }' /proc/self/mountinfo; mkdir /new-${TAG} && echo x > /new-${TAG}/f && cat /new-${TAG}/f`,
    ])
    const lostFound = existsSync('/lost+found') ? '/lost+found tmpfs\n' : ''
    expect(r).toEqual({ exitCode: 0, stdout: `/ overlay\n${lostFound}x\n`, stderr: '' })
    expect(existsSync(`/new-${TAG}`)).toBe(false)
  })

  test('a write deeper in the host tree (/usr/bin) never reaches the host either', async () => {
    const deep = probes[3]
    const r = await sb.exec(['/bin/sh', '-c', 'echo probe > "$1" && cat "$1"', 'sh', deep])
    // Files of host users other than the invoker are unmapped (nobody)
    // inside; for a root host user all of them, root's too: its sandbox
    // user is an unprivileged uid outside. An ordinary user's /usr holding
    // nothing of its own is bound read-only.
    const why = WHOLE_ROOT || layered('/usr') ? 'Permission denied' : 'Read-only file system'
    expect(r).toEqual({ exitCode: 2, stdout: '', stderr: `sh: 1: cannot create ${deep}: ${why}\n` })
    expect(existsSync(deep)).toBe(false)
  })

  test('/sys is read-only', async () => {
    const r = await sb.exec(['touch', `/sys/bsb-probe-${TAG}`])
    expect(r).toEqual({ exitCode: 1, stdout: '', stderr: `touch: cannot touch '/sys/bsb-probe-${TAG}': Read-only file system\n` })
  })

  test('/sys and every filesystem mounted below it on the host are read-only, and no write into one succeeds', async () => {
    // mountinfo: field 5 is the mount point, field 6 its own options.
    const r = await sb.exec([
      '/bin/sh',
      '-c',
      'awk \'$5 ~ /^\\/sys(\\/|$)/ { print $5, substr($6, 1, 3) }\' /proc/self/mountinfo; ' +
        'for m in $(awk \'$5 ~ /^\\/sys(\\/|$)/ { print $5 }\' /proc/self/mountinfo); do ' +
        'touch "$m/bsb-probe" 2>/dev/null && echo "written: $m"; done; true',
    ])
    expect(r.exitCode).toBe(0)
    const lines = r.stdout.trim().split('\n')
    expect(lines[0]).toBe('/sys ro,')
    expect(lines.filter((l) => !l.endsWith(' ro,'))).toEqual([])
  })

  test("/sys is the sandbox's own: no host network interface, no host cgroup tree, nothing of the host mounted below it", async () => {
    const r = await sb.exec([
      '/bin/sh',
      '-c',
      'ls /sys/class/net; ls -A /sys/fs/cgroup | wc -l; ' +
        // The filesystem type follows the optional fields' "-".
        'awk \'$5 ~ /^\\/sys(\\/|$)/ { for (i = 7; $i != "-"; i++); print $5, $(i + 1) }\' /proc/self/mountinfo',
    ])
    expect(r).toEqual({ exitCode: 0, stdout: 'lo\n0\n/sys sysfs\n', stderr: '' })
  })

  test("the host's sysctls cannot be changed: /proc/sys, /proc/irq, /proc/bus and /proc/fs are read-only", async () => {
    // Writing back the value it has: harmless even where the write went through.
    const r = await sb.exec([
      '/bin/sh',
      '-c',
      'echo $(cat /proc/sys/kernel/printk_ratelimit) > /proc/sys/kernel/printk_ratelimit; ' +
        'awk \'$5 ~ /^\\/proc\\/(sys|irq|bus|fs)$/ { print $5, substr($6, 1, 3) }\' /proc/self/mountinfo | sort',
    ])
    // The file is root's, and a root host user's sandbox user may be uid 0 outside.
    expect(r.stderr).toBe('/bin/sh: 1: cannot create /proc/sys/kernel/printk_ratelimit: Read-only file system\n')
    const present = ['bus', 'fs', 'irq', 'sys'].filter((d) => existsSync(`/proc/${d}`))
    expect(r.stdout).toBe(present.map((d) => `/proc/${d} ro,\n`).join(''))
  })

  test.skipIf(HOST_UID !== 0)("a root host user's sandbox user is an unprivileged uid outside: host root's own files refuse it", async () => {
    const secret = `/var/tmp/bsb-root-only-${TAG}`
    writeFileSync(secret, 'root only\n', { mode: 0o600 })
    // The host kernel's views that only root may read.
    const files = ['/proc/keys', '/proc/timer_list', '/proc/slabinfo', '/proc/vmallocinfo', '/proc/kcore']
      .filter((f) => existsSync(f) && (statSync(f).mode & 0o004) === 0)
    const dirs = ['/sys/kernel/tracing', '/sys/kernel/debug', '/sys/firmware', '/sys/fs/pstore']
      .filter((d) => existsSync(d) && (statSync(d).mode & 0o005) === 0)
    try {
      const r = await sb.exec([
        '/bin/sh',
        '-c',
        `tr -s ' ' < /proc/self/uid_map; tr -s ' ' < /proc/self/gid_map; cat ${secret}; ` +
          `for f in ${files.join(' ')}; do echo "$f $(cat $f 2>/dev/null | wc -c)"; done; ` +
          `for d in ${dirs.join(' ')}; do echo "$d $(ls -A $d 2>/dev/null | wc -l)"; done`,
      ])
      expect(r.stdout).toBe(' 1000 2147483645 1\n 1000 2147483645 1\n' + [...files, ...dirs].map((p) => `${p} 0\n`).join(''))
      expect(r.stderr).toBe(`cat: ${secret}: Permission denied\n`)
    } finally {
      rmSync(secret, { force: true })
    }
  })

  test.skipIf(HOST_UID !== 0)("a root host user's tool below a directory closed to others works inside, read-only, alone", async () => {
    // Like a tool in /root/.bun/bin: the sandbox's uid outside could not
    // reach it by its path, so it comes in as a mount made on the host.
    const closed = tempDir('bsb-iso-closed-')
    expect(statSync(closed).mode & 0o777).toBe(0o700)
    mkdirSync(join(closed, 'tools'))
    writeFileSync(join(closed, 'tools', 'bsb-hello'), '#!/bin/sh\necho "hello from $0"\n', { mode: 0o755 })
    writeFileSync(join(closed, 'beside-the-tools'), 'not for the sandbox\n')
    const tools = join(closed, 'tools')
    const other = newSandbox(tempDir('bsb-iso-closed-proj-'), { env: { PATH: `${tools}:/usr/bin:/bin` } })
    try {
      const r = await other.exec([
        '/bin/sh',
        '-c',
        `bsb-hello; ls -A ${closed}; touch ${tools}/new; ` +
          `awk '$5 == "${tools}" { split($6, o, ","); print o[1], o[2], o[3] }' /proc/self/mountinfo`,
      ])
      expect(r.stdout).toBe(`hello from ${tools}/bsb-hello\ntools\nro nosuid nodev\n`)
      expect(r.stderr).toBe(`touch: cannot touch '${tools}/new': Read-only file system\n`)
      expect(existsSync(join(tools, 'new'))).toBe(false)
    } finally {
      await other.stop()
    }
  })

  test("a toolchain manager's shim on PATH works inside (its store read-only); the rest of the home stays hidden", () => {
    // Like pyenv: ~/.pyenv/shims/x runs what ~/.pyenv/versions holds. In a process whose HOME is a
    // home of the test's own.
    const home = tempDir('bsb-iso-home-')
    const version = join(home, '.pyenv/versions/1.0/bin')
    mkdirSync(version, { recursive: true })
    mkdirSync(join(home, '.pyenv/shims'))
    mkdirSync(join(home, '.ssh'))
    writeFileSync(join(version, 'bsb-tool'), '#!/bin/sh\necho "tool 1.0"\n', { mode: 0o755 })
    writeFileSync(join(home, '.pyenv/shims/bsb-tool'), `#!/bin/sh\nexec ${version}/bsb-tool "$@"\n`, { mode: 0o755 })
    writeFileSync(join(home, '.ssh/id_ed25519'), 'host key\n')
    const script = join(tempDir('bsb-iso-script-'), 'tool.js')
    writeFileSync(script, `const { Sandbox, parseSandboxfile } = require(${JSON.stringify(REPO)})
      const sb = new Sandbox(parseSandboxfile('FROM host\\nWORKDIR .\\n'), { cwd: ${JSON.stringify(tempDir('bsb-iso-proj-'))} })
      sb.exec(['/bin/sh', '-c', 'bsb-tool; ls -A "$HOME"; cat "$HOME/.ssh/id_ed25519"; touch "$HOME/.pyenv/new"'])
        .then((r) => console.log(JSON.stringify(r)), (e) => console.log(e.message)).finally(() => sb.stop())`)
    const env = { ...process.env, HOME: home, PATH: `${home}/.pyenv/shims:/usr/bin:/bin` }
    const r = spawnSync(process.execPath, [script], { encoding: 'utf8', env })
    expect(JSON.parse(r.stdout)).toEqual({
      exitCode: 1,
      stdout: 'tool 1.0\n.pyenv\n',
      stderr: `cat: ${home}/.ssh/id_ed25519: No such file or directory\ntouch: cannot touch '${home}/.pyenv/new': Read-only file system\n`,
    })
    expect(existsSync(join(home, '.pyenv/new'))).toBe(false)
  })

  test.skipIf(HOST_UID !== 0)("a root host user's state directory below a directory closed to others is an error naming it", () => {
    const closed = tempDir('bsb-iso-closed-state-')
    const state = join(closed, 'state')
    const script = join(tempDir('bsb-iso-script-'), 'start.js')
    writeFileSync(script, `const { Sandbox, parseSandboxfile } = require(${JSON.stringify(REPO)})
      const sb = new Sandbox(parseSandboxfile('FROM host\\nWORKDIR .\\n'), { cwd: ${JSON.stringify(tempDir('bsb-iso-proj-'))} })
      sb.exec('true').then(() => console.log('started'), (e) => console.log(e.message)).finally(() => sb.stop())`)
    const r = spawnSync(process.execPath, [script], { encoding: 'utf8', env: { ...process.env, BUN_SANDBOX_STATE_DIR: state } })
    expect(r.stdout).toBe(
      `cannot create a state directory in ${state}: ${closed} (mode 0700) is closed to the sandbox's user (host uid 2147483645), ` +
        'which must reach its state directory: set BUN_SANDBOX_STATE_DIR to a directory below none that is closed to other users\n',
    )
    // Nothing was started in it.
    expect(readdirSync(state).filter((n) => n.startsWith('sb-'))).toEqual([])
  })

  // Top-level host directories that are someone else's, not writable by the sandbox's user and
  // hold nothing of its own, with nothing mounted in them (often /boot, /srv, /usr). A root host
  // user's is uid 2147483645 outside, in no group; the root's overlay shows them as on the host.
  const SANDBOX_UID = 2147483645
  const hostMounts = readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[4])
    .filter(Boolean)
  const notOurs = readdirSync('/')
    .sort()
    .map((n) => `/${n}`)
    .filter((d) => !['/proc', '/dev', '/sys', '/tmp', '/run', '/home', '/root', '/lost+found'].includes(d))
    .filter((d) => !hostMounts.some((m) => m === d || m.startsWith(`${d}/`)))
    .filter((d) => {
      const st = lstatSync(d, { throwIfNoEntry: false })
      if (!st?.isDirectory()) return false
      if (HOST_UID === 0) return st.uid !== SANDBOX_UID && !(st.mode & 0o002) && !(st.gid === SANDBOX_UID && st.mode & 0o020)
      return !layered(d)
    })
  test.skipIf(notOurs.length === 0)(`a host directory that holds nothing of ours refuses writes: ${notOurs.join(' ')}`, async () => {
    const d = notOurs[0]
    const r = await sb.exec(['/bin/sh', '-c', `touch ${d}/x; awk '$5 == "${d}" { print $5, substr($6, 1, 3) }' /proc/self/mountinfo`])
    // In the root's overlay as on the host (not ours: Permission denied), or bound read-only.
    expect(r).toEqual(
      WHOLE_ROOT
        ? { exitCode: 0, stdout: '', stderr: `touch: cannot touch '${d}/x': Permission denied\n` }
        : { exitCode: 0, stdout: `${d} ro,\n`, stderr: `touch: cannot touch '${d}/x': Read-only file system\n` },
    )
    expect(existsSync(`${d}/x`)).toBe(false)
  })

  test('one world: a file written by one exec is read by the next', async () => {
    const w = await sb.exec(['/bin/sh', '-c', 'echo one > /tmp/world.txt && echo two > shared.txt'])
    expect(w).toEqual({ exitCode: 0, stdout: '', stderr: '' })
    const r = await sb.exec(['cat', '/tmp/world.txt', 'shared.txt'])
    expect(r).toEqual({ exitCode: 0, stdout: 'one\ntwo\n', stderr: '' })
  })

  test('/dev holds only null zero full random urandom tty pts shm ptmx fd stdin stdout stderr', async () => {
    const r = await sb.exec(['ls', '-A', '/dev'])
    expect(r.exitCode).toBe(0)
    expect(r.stdout.trim().split('\n').sort()).toEqual(
      ['fd', 'full', 'null', 'ptmx', 'pts', 'random', 'shm', 'stderr', 'stdin', 'stdout', 'tty', 'urandom', 'zero'].sort(),
    )
  })

  test("the host's environment does not leak in", async () => {
    expect(process.env.BSB_HOST_ONLY_VARIABLE).toBe('host value')
    const r = await sb.exec(['/bin/sh', '-c', 'printenv BSB_HOST_ONLY_VARIABLE; echo $?; printenv SANDBOX'])
    expect(r).toEqual({ exitCode: 0, stdout: '1\n1\n', stderr: '' })
  })
})

// ---------------------------------------------------------------------------
describe('processes', () => {
  let proj: string
  let sb: Sandbox

  beforeAll(() => {
    proj = tempDir('bsb-iso-proc-')
    sb = newSandbox(proj)
  })
  afterAll(async () => {
    await sb.stop()
  })

  test("/proc shows only the sandbox's processes; its PID 1 is the sandbox's init", async () => {
    const r = await sb.exec(['/bin/sh', '-c', 'echo $$; for p in /proc/[0-9]*; do echo ${p#/proc/}; done; tr "\\0" " " < /proc/1/cmdline'])
    expect(r.exitCode).toBe(0)
    const [self, ...rest] = r.stdout.split('\n')
    const cmdline = rest.pop()!
    expect(rest.map(Number).sort((a, b) => a - b)).toEqual([1, Number(self)].sort((a, b) => a - b))
    expect(cmdline).toContain('bun-sandbox-init')
  })

  test('the test process (a host pid) cannot be signalled: "No such process"', async () => {
    const r = await sb.exec(['/bin/sh', '-c', `kill -0 ${process.pid}`])
    expect(r.exitCode).toBe(1)
    expect(r.stdout).toBe('')
    expect(r.stderr.trim()).toBe('/bin/sh: 1: kill: No such process')
  })

  test('SIGKILL to the sandbox init from inside is ignored; the sandbox still answers', async () => {
    const r = await sb.exec(['/bin/sh', '-c', 'kill -KILL 1; echo sent $?'])
    expect(r).toEqual({ exitCode: 0, stdout: 'sent 0\n', stderr: '' })
    expect(await sb.exec(['echo', 'alive'])).toEqual({ exitCode: 0, stdout: 'alive\n', stderr: '' })
  })

  test('the hostname is "sandbox"', async () => {
    expect(await sb.exec(['uname', '-n'])).toEqual({ exitCode: 0, stdout: 'sandbox\n', stderr: '' })
  })

  test('no capabilities, no new privileges, a seccomp filter', async () => {
    const r = await sb.exec(['grep', '-E', '^(Cap(Inh|Prm|Eff|Bnd|Amb)|NoNewPrivs|Seccomp):', '/proc/self/status'])
    expect(r).toEqual({
      exitCode: 0,
      stdout:
        'CapInh:\t0000000000000000\nCapPrm:\t0000000000000000\nCapEff:\t0000000000000000\n' +
        'CapBnd:\t0000000000000000\nCapAmb:\t0000000000000000\nNoNewPrivs:\t1\nSeccomp:\t2\n',
      stderr: '',
    })
  })

  test("the sandbox's init cannot be read from inside (memory, environment, root) and runs under the same filter", async () => {
    const r = await sb.exec([
      '/bin/sh',
      '-c',
      'dd if=/proc/1/mem bs=1 count=1 skip=4096 2>&1; cat /proc/1/environ 2>&1; ls /proc/1/root/ 2>&1; ' +
        'grep -E "^(CapBnd|NoNewPrivs|Seccomp):" /proc/1/status',
    ])
    expect(r.stdout).toBe(
      "dd: failed to open '/proc/1/mem': Permission denied\n" +
        'cat: /proc/1/environ: Permission denied\n' +
        "ls: cannot access '/proc/1/root/': Permission denied\n" +
        'CapBnd:\t0000000000000000\nNoNewPrivs:\t1\nSeccomp:\t2\n',
    )
  })

  test(`the identity is the invoking user's (1000 for a root host user): uid ${INNER_UID} gid ${INNER_GID}`, async () => {
    const r = await sb.exec(['/bin/sh', '-c', 'id -u; id -g; id -G'])
    expect(r).toEqual({ exitCode: 0, stdout: `${INNER_UID}\n${INNER_GID}\n${INNER_GID}\n`, stderr: '' })
  })

  test('only fds 0, 1, 2 are open at exec (ls sees its own directory fd 3)', async () => {
    const r = await sb.exec(['/bin/sh', '-c', 'ls /proc/$$/fd; echo --; ls /proc/self/fd'])
    expect(r).toEqual({ exitCode: 0, stdout: '0\n1\n2\n--\n0\n1\n2\n3\n', stderr: '' })
  })

  test('`unshare -U true` and `unshare -r true` fail with "Operation not permitted"', async () => {
    for (const flag of ['-U', '-r']) {
      const r = await sb.exec(['unshare', flag, 'true'])
      expect(r).toEqual({ exitCode: 1, stdout: '', stderr: 'unshare: unshare failed: Operation not permitted\n' })
    }
  })

  test('`mount -t tmpfs none /mnt` fails', async () => {
    const r = await sb.exec(['mount', '-t', 'tmpfs', 'none', '/mnt'])
    expect(r.exitCode).toBe(32)
    expect(r.stdout).toBe('')
    expect(r.stderr).toStartWith('mount: /mnt: must be superuser to use mount.\n')
  })

  test.skipIf(!PY)(`the blocked system calls fail with EPERM${PY ? '' : NO_PY}`, async () => {
    // Each line: the call, its result, the errno text. ptrace first (SPEC §3 names it).
    const code = `
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
buf = ctypes.create_string_buffer(256)
calls = [
  ('ptrace(PTRACE_TRACEME)', lambda: libc.ptrace(0, 0, None, None)),
  ('ptrace(PTRACE_ATTACH, ppid)', lambda: libc.ptrace(16, os.getppid(), None, None)),
  ('process_vm_readv(1)', lambda: libc.syscall(310, 1, buf, 1, buf, 1, 0)),
  ('mount', lambda: libc.mount(b'none', b'/mnt', b'tmpfs', 0, None)),
  ('umount2', lambda: libc.umount2(b'/proc', 2)),
  ('pivot_root', lambda: libc.syscall(155, b'/tmp', b'/tmp')),
  ('unshare(CLONE_NEWUSER)', lambda: libc.unshare(0x10000000)),
  ('unshare(CLONE_NEWNS)', lambda: libc.unshare(0x00020000)),
  ('setns', lambda: libc.setns(0, 0)),
  ('io_uring_setup', lambda: libc.syscall(425, 1, buf)),
  ('bpf', lambda: libc.syscall(321, 0, buf, 64)),
  ('perf_event_open', lambda: libc.syscall(298, buf, 0, -1, -1, 0)),
  ('keyctl', lambda: libc.syscall(250, 0, 0, 0, 0, 0)),
  ('userfaultfd', lambda: libc.syscall(323, 0)),
  ('kexec_load', lambda: libc.syscall(246, 0, 0, None, 0)),
  ('init_module', lambda: libc.syscall(175, buf, 0, b'')),
  ('socket(AF_VSOCK)', lambda: libc.socket(40, 1, 0)),
  ('socket(AF_VSOCK | 1 << 32)', lambda: libc.syscall(ctypes.c_long(41), ctypes.c_long((1 << 32) | 40), ctypes.c_long(1), ctypes.c_long(0))),
]
for name, call in calls:
    ctypes.set_errno(0)
    r = call()
    print(name, r, os.strerror(ctypes.get_errno()) if r == -1 else 'allowed')
`
    const r = await py(sb, code)
    const names = [
      'ptrace(PTRACE_TRACEME)',
      'ptrace(PTRACE_ATTACH, ppid)',
      'process_vm_readv(1)',
      'mount',
      'umount2',
      'pivot_root',
      'unshare(CLONE_NEWUSER)',
      'unshare(CLONE_NEWNS)',
      'setns',
      'io_uring_setup',
      'bpf',
      'perf_event_open',
      'keyctl',
      'userfaultfd',
      'kexec_load',
      'init_module',
      // vsock ignores network namespaces: it would reach the hypervisor.
      'socket(AF_VSOCK)',
      'socket(AF_VSOCK | 1 << 32)',
    ]
    expect(r).toEqual({ exitCode: 0, stdout: names.map((n) => `${n} -1 Operation not permitted\n`).join(''), stderr: '' })
  })

  test.skipIf(!PY || !existsSync('/proc/sys/fs/inotify/max_user_instances'))(
    `one sandbox gets at most half of the host user's inotify instances${PY ? '' : NO_PY}`,
    async () => {
      const host = Number(readFileSync('/proc/sys/fs/inotify/max_user_instances', 'utf8'))
      const r = await py(sb, 'import ctypes\nl = ctypes.CDLL(None)\nn = 0\nwhile l.inotify_init() >= 0: n += 1\nprint(n)\n')
      expect(r.exitCode).toBe(0)
      // Fewer when the host user holds more than half already.
      const n = Number(r.stdout)
      expect(n).toBeGreaterThan(0)
      expect(n).toBeLessThanOrEqual(Math.floor(host / 2))
    },
  )

  test.skipIf(!PY)(`TIOCSTI and TIOCLINUX on a pty get EPERM${PY ? '' : NO_PY}`, async () => {
    const code = `
import fcntl, os, termios
m, s = os.openpty()
for name, req in (('TIOCSTI', termios.TIOCSTI), ('TIOCLINUX', 0x541C)):
    try:
        fcntl.ioctl(s, req, b'x'); print(name, 'allowed')
    except OSError as e:
        print(name, e.errno, e.strerror)
`
    const r = await py(sb, code)
    expect(r).toEqual({ exitCode: 0, stdout: 'TIOCSTI 1 Operation not permitted\nTIOCLINUX 1 Operation not permitted\n', stderr: '' })
  })

  test('exec timeoutMs ends `sleep 30` promptly and kills it: exitCode null, stderr names the limit', async () => {
    const started = Date.now()
    const sleep = `30.${TAG}`
    const r = await sb.exec(['sleep', sleep], { timeoutMs: 300 })
    expect(Date.now() - started).toBeLessThan(5000)
    expect(await waitFor(() => hostProcesses(`sleep ${sleep}`).length === 0, 2000)).toBe(true)
    expect(r.stdout).toBe('')
    expect(r.stderr).toBe('bun-sandbox: the command ran past its time limit of 300 ms and was killed\n')
    expect(await sb.exec(['echo', 'after'])).toEqual({ exitCode: 0, stdout: 'after\n', stderr: '' })
    // SPEC §2: `exitCode: number | null` -- null, present, not a missing key.
    expect('exitCode' in r ? r.exitCode : 'missing').toBeNull()
  })

  test('timeoutMs also kills what the command left running (its process group), even once the command itself exited', async () => {
    // The shell exits at once; its background child keeps the output pipe open, so the exec runs into its limit.
    const sleep = `100.${TAG}`
    const r = await sb.exec(['/bin/sh', '-c', `sleep ${sleep} & echo leader exits`], { timeoutMs: 300 })
    expect(r.stderr).toBe('bun-sandbox: the command ran past its time limit of 300 ms and was killed\n')
    await waitFor(() => hostProcesses(`sleep ${sleep}`).length === 0, 2000)
    expect(hostProcesses(`sleep ${sleep}`)).toEqual([])
  })

  test('a command that does not exist: 127 and a message naming it', async () => {
    const name = `bsb-no-such-command-${TAG}`
    expect(await sb.exec([name, '--flag'])).toEqual({ exitCode: 127, stdout: '', stderr: `bun-sandbox: ${name}: command not found\n` })
    expect(await sb.exec(name)).toEqual({ exitCode: 127, stdout: '', stderr: `/bin/sh: 1: ${name}: not found\n` })
  })
})

// ---------------------------------------------------------------------------
describe('network', () => {
  let proj: string
  let sb: Sandbox
  let server: net.Server
  let port: number

  beforeAll(async () => {
    proj = tempDir('bsb-iso-net-')
    sb = newSandbox(proj)
    server = net.createServer((s) => s.end('host service\n'))
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    port = (server.address() as net.AddressInfo).port
  })
  afterAll(async () => {
    await sb.stop()
    await new Promise((resolve) => server.close(resolve))
  })

  test('only the loopback interface exists (per network namespace: /proc/net/dev)', async () => {
    const r = await sb.exec(['cat', '/proc/net/dev'])
    expect(r.exitCode).toBe(0)
    const names = r.stdout
      .split('\n')
      .slice(2)
      .filter(Boolean)
      .map((l) => l.split(':')[0].trim())
    expect(names).toEqual(['lo'])
  })

  test("a TCP service on the host's 127.0.0.1 is unreachable: connection refused", async () => {
    // It is reachable from the host, so the refusal inside is the sandbox's doing.
    const hello = await new Promise<string>((resolve, reject) => {
      const c = net.connect(port, '127.0.0.1')
      let data = ''
      c.on('data', (d) => (data += d))
      c.on('end', () => resolve(data))
      c.on('error', reject)
    })
    expect(hello).toBe('host service\n')
    const r = await sb.exec(['bash', '-c', `exec 3<>/dev/tcp/127.0.0.1/${port}`])
    expect(r).toEqual({
      exitCode: 1,
      stdout: '',
      stderr: `bash: connect: Connection refused\nbash: line 1: /dev/tcp/127.0.0.1/${port}: Connection refused\n`,
    })
  })

  test('an outside address has no route: "Network is unreachable"', async () => {
    // 192.0.2.1 is TEST-NET-1 (documentation only); no route is tried at all.
    const r = await sb.exec(['bash', '-c', 'exec 3<>/dev/tcp/192.0.2.1/80'])
    expect(r).toEqual({
      exitCode: 1,
      stdout: '',
      stderr: 'bash: connect: Network is unreachable\nbash: line 1: /dev/tcp/192.0.2.1/80: Network is unreachable\n',
    })
  })

  test('names do not resolve (no DNS without NET): getent exits 2', async () => {
    expect(await sb.exec(['getent', 'hosts', 'api.example.com'])).toEqual({ exitCode: 2, stdout: '', stderr: '' })
  })
})

// ---------------------------------------------------------------------------
describe('resources: limits.pids = 64', () => {
  let proj: string
  let sb: Sandbox
  // How many children a bounded fork loop made before the kernel refused.
  let probe: { forks: number; error: string } | undefined

  beforeAll(() => {
    proj = tempDir('bsb-iso-res-')
    sb = newSandbox(proj, { limits: { pids: 64 } })
  })
  afterAll(async () => {
    await sb.stop()
  })

  test.skipIf(!PY)(`a bounded fork loop is refused at the limit with EAGAIN${PY ? '' : NO_PY}`, async () => {
    // At most 300 children (each sleeps, then all are killed): safe even if
    // the limit were not enforced, and it says so instead of hurting the host.
    const code = `
import os, signal, time
kids, err = [], 'none'
for i in range(300):
    try:
        pid = os.fork()
    except OSError as e:
        err = e.strerror; break
    if pid == 0:
        time.sleep(30); os._exit(0)
    kids.append(pid)
print(len(kids), err)
for k in kids: os.kill(k, signal.SIGKILL)
for k in kids: os.waitpid(k, 0)
`
    const r = await py(sb, code, { timeoutMs: 20000 })
    expect(r.exitCode).toBe(0)
    const [forks, ...error] = r.stdout.trim().split(' ')
    probe = { forks: Number(forks), error: error.join(' ') }
    expect(probe.error).toBe('Resource temporarily unavailable')
    expect(probe.forks).toBeLessThan(64)
  })

  test.skipIf(!PY)(`a fork bomb is contained ("fork: retry: Resource temporarily unavailable") and the sandbox still answers${PY ? '' : NO_PY}`, async () => {
    // The real bomb runs only once the bounded loop showed the limit holds:
    // an unbounded one on a host where it does not would take the host down.
    if (!(probe && probe.error === 'Resource temporarily unavailable' && probe.forks < 64)) {
      throw new Error(
        `not running the fork bomb: the pids limit of 64 is not enforced (a bounded loop made ${probe?.forks} children, error: ${probe?.error})`,
      )
    }
    // The output of a command killed at its time limit is not returned: the
    // bomb's errors go to a file. `wait` keeps the exec alive, so the time
    // limit kills the whole process group.
    const started = Date.now()
    const r = await sb.exec(['bash', '-c', 'exec 2>/tmp/bomb.err; bomb() { bomb | bomb & }; bomb; wait'], { timeoutMs: 3000 })
    expect(Date.now() - started).toBeLessThan(10000)
    // Killed at its time limit (null-vs-missing exitCode is the timeoutMs test's business).
    expect(r.exitCode ?? null).toBeNull()
    expect(r.stderr).toBe('bun-sandbox: the command ran past its time limit of 3000 ms and was killed\n')
    // The host is fine (we are still here) and so is the sandbox: these execs need no fork.
    const err = await sb.exec(['grep', '-m1', '-o', 'fork: retry: Resource temporarily unavailable', '/tmp/bomb.err'])
    expect(err).toEqual({ exitCode: 0, stdout: 'fork: retry: Resource temporarily unavailable\n', stderr: '' })
    expect(await sb.exec(['echo', 'alive'])).toEqual({ exitCode: 0, stdout: 'alive\n', stderr: '' })
    // And the time limit ended the bomb: none of its processes is left.
    const bombArgs = 'bash -c exec 2>/tmp/bomb.err; bomb() { bomb | bomb & }; bomb; wait'
    await waitFor(() => hostProcesses(bombArgs).length === 0, 2000)
    expect(hostProcesses(bombArgs).length).toBe(0)
  }, 20000)
})

// ---------------------------------------------------------------------------
describe('resources: limits.diskBytes = 8 MiB', () => {
  const DISK = 8 * 1024 * 1024
  const DETAIL = `the sandbox's writable layers reached limits.diskBytes (${DISK} bytes): writes fail with "No space left on device"`
  let proj: string
  let sb: Sandbox
  let before: Set<string>
  const events: { kind: string; detail: string; host?: string }[] = []
  // The file stays until `rm` (the first test keeps it until the full tmpfs is reported).
  const dd = (path: string, rm = true) => `dd if=/dev/zero of=${path} bs=1M count=64 2>&1; echo "exit $?"${rm ? `; rm -f ${path}` : ''}`

  /** The bytes dd says it wrote before it stopped. */
  const written = (out: string) => Number(/^(\d+) bytes/m.exec(out)?.[1])

  beforeAll(() => {
    proj = tempDir('bsb-iso-disk-')
    before = new Set(stateDirs())
    sb = new Sandbox(parseSandboxfile(`${SANDBOXFILE}OUTPUT out/\nLOGS logs/*.log\n`), {
      cwd: proj,
      limits: { diskBytes: DISK },
      onViolation: (e) => events.push(e),
    })
  })
  afterAll(async () => {
    await sb.stop()
  })

  test('64 MiB written in WORKDIR fails with ENOSPC at the limit, reported once as a `limit` violation', async () => {
    const r = await sb.exec(['/bin/sh', '-c', dd('big', false)])
    expect(r.exitCode).toBe(0)
    expect(r.stdout).toContain('No space left on device')
    expect(r.stdout).toMatch(/exit 1\n$/)
    // At most 8 MiB got through: dd says how much it wrote.
    expect(written(r.stdout)).toBeGreaterThan(0)
    expect(written(r.stdout)).toBeLessThanOrEqual(DISK)
    expect(await waitFor(() => events.length > 0, 3000)).toBe(true)
    expect(events).toEqual([{ kind: 'limit', detail: DETAIL }])
    // Nothing of it ever reached the host's WORKDIR; removing it frees the space.
    expect(existsSync(join(proj, 'big'))).toBe(false)
    expect(await sb.exec('rm big')).toEqual({ exitCode: 0, stdout: '', stderr: '' })
  })

  // A host directory's layer, where the sandbox's user can write in one: an ordinary user's, in
  // /usr or /etc when it owns an entry of them. A root host user's writes in none but / (the next test).
  const layeredDirs = WHOLE_ROOT ? [] : ['/usr', '/etc'].filter(layered)
  test.skipIf(layeredDirs.length === 0)(`so does 64 MiB in a host directory's layer: ${layeredDirs.join(' ')}`, async () => {
    for (const dir of layeredDirs) {
      const r = await sb.exec(['/bin/sh', '-c', dd(`${dir}/bsb-big-${TAG}`)])
      expect(r.stdout).toContain(`dd: error writing '${dir}/bsb-big-${TAG}': No space left on device`)
      expect(r.stdout).toMatch(/exit 1\n$/)
      expect(written(r.stdout)).toBeLessThanOrEqual(DISK)
      expect(existsSync(`${dir}/bsb-big-${TAG}`)).toBe(false)
    }
  })

  test('so do 64 MiB in /tmp, /dev/shm and / (each tmpfs capped on its own)', async () => {
    for (const path of ['/tmp/big', '/dev/shm/big', `/bsb-big-${TAG}`]) {
      const r = await sb.exec(['/bin/sh', '-c', dd(path)])
      expect(r.stdout).toContain(`dd: error writing '${path}': No space left on device`)
      expect(r.stdout).toMatch(/exit 1\n$/)
      expect(written(r.stdout)).toBeLessThanOrEqual(DISK)
    }
  })

  test('the sandbox keeps answering; a small file in WORKDIR is seen by diff() and extracted', async () => {
    expect(await sb.exec('echo ok')).toEqual({ exitCode: 0, stdout: 'ok\n', stderr: '' })
    const w = await sb.exec(['/bin/sh', '-c', 'mkdir -p out && echo small > out/small.txt && cat out/small.txt'])
    expect(w).toEqual({ exitCode: 0, stdout: 'small\n', stderr: '' })
    expect(await sb.diff()).toEqual({ added: ['out/small.txt'], modified: [], deleted: [] })
    const dest = tempDir('bsb-iso-disk-out-')
    expect(await sb.extractOutputs(dest)).toEqual(['out/small.txt'])
    expect(readFileSync(join(dest, 'out/small.txt'), 'utf8')).toBe('small\n')
    expect(existsSync(join(proj, 'out'))).toBe(false)
  })

  test('LOGS read the upper through its fd: getLogFiles() lists, tailLogs() follows', async () => {
    expect(await sb.exec(['/bin/sh', '-c', 'mkdir -p logs && echo first > logs/app.log'])).toEqual({ exitCode: 0, stdout: '', stderr: '' })
    const files = sb.getLogFiles()
    expect(files.length).toBe(1)
    expect(readFileSync(files[0], 'utf8')).toBe('first\n')
    const lines: string[] = []
    const stopTail = await sb.tailLogs((file, line) => void lines.push(`${file}: ${line}`))
    await sb.exec(['/bin/sh', '-c', 'echo second >> logs/app.log'])
    expect(await waitFor(() => lines.length > 0, 5000)).toBe(true)
    expect(lines).toEqual(['logs/app.log: second'])
    stopTail()
  })

  test('nothing of the sandbox stays on the host after stop()', async () => {
    const mine = stateDirs().filter((d) => !before.has(d))
    expect(mine.length).toBe(1)
    await sb.stop()
    expect(stateDirs().filter((d) => !before.has(d))).toEqual([])
    expect(readdirSync(proj)).toEqual([])
    // Only the one report, and none after stop().
    expect(events).toEqual([{ kind: 'limit', detail: DETAIL }])
  })

  test('diskBytes below 1 MiB is refused, naming the minimum', () => {
    expect(() => newSandbox(proj, { limits: { diskBytes: 1000 } })).toThrow(
      'limits.diskBytes must be at least 1048576 (1 MiB), not 1000',
    )
  })
})

// ---------------------------------------------------------------------------
describe('lifecycle', () => {
  test('stop(): exec after it rejects saying stopped; stop() twice is fine; no process or state dir remains', async () => {
    const proj = tempDir('bsb-iso-life-')
    const marker = `1234.${TAG}1`
    const before = new Set(stateDirs())
    const sb = newSandbox(proj)
    // A background process that outlives the exec that started it.
    const r = await sb.exec(['/bin/sh', '-c', `sleep ${marker} >/dev/null 2>&1 & echo started`])
    expect(r).toEqual({ exitCode: 0, stdout: 'started\n', stderr: '' })
    // And a command still running when stop() comes.
    const runningMarker = `1234.${TAG}2`
    const running = sb.exec(['sleep', runningMarker])
    expect(await waitFor(() => hostProcesses(`sleep ${runningMarker}`).length === 1, 5000)).toBe(true)
    expect(sb.isRunning()).toBe(true)
    expect(sb.getStatus()).toEqual([{ name: 'exec', type: 'exec', pid: Number(hostProcesses(`sleep ${runningMarker}`)[0].trim().split(/\s+/)[0]) }])
    expect(hostProcesses(`sleep ${marker}`)).toHaveLength(1)
    const mine = stateDirs().filter((d) => !before.has(d))
    expect(mine).toHaveLength(1)
    expect(existsSync(mine[0])).toBe(true)

    await sb.stop()
    expect(hostProcesses(`sleep ${marker}`)).toEqual([])
    expect(hostProcesses(`sleep ${runningMarker}`)).toEqual([])
    // SIGTERM ended it: 128 + 15.
    expect(await running).toEqual({ exitCode: 143, stdout: '', stderr: '' })
    expect(existsSync(mine[0])).toBe(false)
    expect(sb.isRunning()).toBe(false)
    expect(sb.getStatus()).toEqual([])
    await expect(sb.exec(['true'])).rejects.toThrow('the sandbox is stopped: create a new Sandbox')
    expect(await sb.stop()).toBeUndefined()
    await expect(sb.exec('true')).rejects.toThrow(/stopped/)
  })

  test('SIGKILL of the host process leaves no sandboxed process; the next sandbox removes its state dir', async () => {
    const proj = tempDir('bsb-iso-kill-')
    const running = `4321.${TAG}1` // a command still running under exec
    const detached = `4321.${TAG}2` // a setsid'd background process
    const script = join(proj, 'child.mjs')
    writeFileSync(
      script,
      `import { createRequire } from 'node:module'
const { Sandbox, parseSandboxfile } = createRequire(import.meta.url)(${JSON.stringify(REPO)})
const sb = new Sandbox(parseSandboxfile(${JSON.stringify(SANDBOXFILE)}), { cwd: ${JSON.stringify(proj)} })
const r = await sb.exec(['/bin/sh', '-c', 'setsid sleep ${detached} >/dev/null 2>&1 < /dev/null & echo ready'])
sb.exec(['/bin/sh', '-c', 'sleep ${running} & wait'])
process.stdout.write('started ' + r.stdout)
setInterval(() => {}, 1 << 30)
`,
    )
    const child = Bun.spawn([process.execPath, script], { cwd: proj, stdout: 'pipe', stderr: 'pipe' })
    try {
      // Wait (bounded) for the child to say its sandbox runs.
      const reader = child.stdout.getReader()
      let out = ''
      const deadline = Date.now() + 15000
      while (!out.includes('\n') && Date.now() < deadline) {
        const chunk = await Promise.race([reader.read(), Bun.sleep(deadline - Date.now()).then(() => null)])
        if (!chunk || chunk.done) break
        out += new TextDecoder().decode(chunk.value)
      }
      expect(out).toBe('started ready\n')
      expect(await waitFor(() => hostProcesses(`sleep ${running}`).length === 1, 5000)).toBe(true)
      expect(hostProcesses(`sleep ${detached}`)).toHaveLength(1)
      const stale = stateDirs(child.pid)
      expect(stale).toHaveLength(1)
      // The zygote, the sandbox's helper and PID 1, and the spare's two.
      const inits = initTree(child.pid)
      expect(inits.length).toBeGreaterThanOrEqual(3)

      child.kill('SIGKILL')
      expect(await child.exited).toBe(137)
      // None outlives the host process.
      expect(await waitFor(() => !inits.some(alive), 5000)).toBe(true)
      const gone = await waitFor(
        () => hostProcesses(`sleep ${running}`).length === 0 && hostProcesses(`sleep ${detached}`).length === 0,
        5000,
      )
      expect([...hostProcesses(`sleep ${running}`), ...hostProcesses(`sleep ${detached}`)]).toEqual([])
      expect(gone).toBe(true)

      // Left behind by the killed process, removed by the next sandbox to start.
      expect(existsSync(stale[0])).toBe(true)
      const next = newSandbox(proj)
      try {
        expect(await next.exec(['true'])).toEqual({ exitCode: 0, stdout: '', stderr: '' })
        expect(existsSync(stale[0])).toBe(false)
      } finally {
        await next.stop()
      }
    } finally {
      child.kill('SIGKILL')
      for (const m of [running, detached]) {
        for (const line of hostProcesses(`sleep ${m}`)) process.kill(Number(line.trim().split(/\s+/)[0]), 'SIGKILL')
      }
    }
  }, 30000)
})

// ---------------------------------------------------------------------------
describe('bad WORKDIR: exec rejects with the reason', () => {
  let proj: string

  beforeAll(() => {
    proj = tempDir('bsb-iso-bad-')
    writeFileSync(join(proj, 'file'), 'not a directory\n')
    symlinkSync('/etc', join(proj, 'out'))
    mkdirSync(join(proj, 'ok'))
  })

  async function rejection(workdir: string): Promise<string> {
    const before = new Set(stateDirs())
    const sb = new Sandbox(parseSandboxfile(`FROM host\nWORKDIR ${workdir}\n`), { cwd: proj })
    try {
      await sb.exec(['true'])
    } catch (e) {
      // A sandbox that could not start leaves nothing behind.
      expect(stateDirs().filter((d) => !before.has(d))).toEqual([])
      return (e as Error).message
    } finally {
      await sb.stop()
    }
    throw new Error(`WORKDIR ${workdir} was accepted`)
  }

  test('missing', async () => {
    expect(await rejection('missing')).toBe(`WORKDIR ${proj}/missing does not exist`)
  })

  test('a file', async () => {
    expect(await rejection('file')).toBe(`WORKDIR ${proj}/file is not a directory`)
  })

  test('a symlink to /etc', async () => {
    expect(await rejection('out')).toBe(
      `WORKDIR ${proj}/out resolves to /etc, outside the project ${proj}: a symlink may not lead the sandbox out of the project`,
    )
  })

  test('under /proc, or /', async () => {
    expect(await rejection('/proc/sys')).toBe('WORKDIR /proc/sys may not be /, or under /proc, /sys or /dev')
    expect(await rejection('/')).toBe('WORKDIR / may not be /, or under /proc, /sys or /dev')
  })

  test('a good sub-directory works (the control case)', async () => {
    const sb = new Sandbox(parseSandboxfile('FROM host\nWORKDIR ok\n'), { cwd: proj })
    try {
      expect(await sb.exec(['pwd'])).toEqual({ exitCode: 0, stdout: `${proj}/ok\n`, stderr: '' })
    } finally {
      await sb.stop()
    }
  })
})
