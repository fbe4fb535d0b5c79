// Faults that need a mount of the test's own, made in a mount namespace of
// its own (root only: CI runs as root; an ordinary user cannot mount):
// - a full disk under the sandbox's state directory (where the WORKDIR's
//   changes collect): writes inside fail with ENOSPC and the sandbox goes on;
//   below the disk floor every process in the sandbox is killed and reported,
//   its changes kept, and the floor is watched again once there is room;
//   a state directory that cannot be made is a clear error; the host loses
//   nothing;
// - a WORKDIR with another filesystem mounted inside it, which the kernel
//   will not put a copy-on-write layer over: a clear error before anything
//   starts;
// - a host directory with another filesystem mounted below it (a disk under
//   /mnt): bound in read-only, the filesystem below it too;
// - a WORKDIR on a filesystem that cannot be idmapped (an overlay): the
//   root host user's sandbox user is uid 0 outside, said in a warning, and
//   root's credential stores are masked.
import { describe, expect, test } from 'bun:test'
import { spawnSync } from 'node:child_process'
import { chmodSync, existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'

const root = resolve(import.meta.dir, '..')
const isRoot = process.getuid?.() === 0

/** Runs `script` with bun in a private mount namespace whose state dir is a tmpfs mounted with `opts`. */
function onSmallDisk(opts: string, script: string): string {
  return inMountNamespace((dir) => {
    const state = join(dir, 'state')
    return `mkdir -p "${state}" && mount -t tmpfs -o ${opts},mode=0700 none "${state}" && export BUN_SANDBOX_STATE_DIR="${state}"`
  }, script)
}

/** Runs `script` with bun in a private mount namespace after the shell commands `setup(dir)` returns. */
function inMountNamespace(setup: (dir: string) => string, script: string): string {
  return inMountNamespaceWithStderr(setup, script).stdout
}

function inMountNamespaceWithStderr(setup: (dir: string) => string, script: string): { stdout: string; stderr: string } {
  const dir = mkdtempSync(join(tmpdir(), 'bun-sandbox-mountns-'))
  // A root host user's sandbox user (an unprivileged uid) must pass
  // through every directory above its state directory.
  chmodSync(dir, 0o711)
  const file = join(dir, 'script.js')
  const project = join(dir, 'project')
  mkdirSync(project)
  writeFileSync(file, `const { Sandbox, parseSandboxfile } = require(${JSON.stringify(root)})\nconst fs = require('node:fs')\n` +
    `const state = process.env.BUN_SANDBOX_STATE_DIR\nconst project = ${JSON.stringify(project)}\n;(async () => {\n${script}\n})().catch((e) => { console.log('THREW ' + e.message); process.exit(1) })\n`)
  const r = spawnSync('unshare', ['-m', 'sh', '-c',
    `mount --make-rprivate / && ${setup(dir)} && exec "${process.execPath}" "${file}"`,
  ], { encoding: 'utf8', timeout: 60_000 })
  if (r.status !== 0) throw new Error(`the script failed (${r.status}): ${r.stdout}${r.stderr}`)
  return { stdout: r.stdout, stderr: r.stderr }
}

describe.skipIf(!isRoot)('the state directory\'s disk is full', () => {
  test('writes in WORKDIR fail with ENOSPC, the sandbox still answers, nothing is left', () => {
    const out = onSmallDisk('size=1m', `
      let reported
      const floorCrossed = new Promise((resolve) => { reported = resolve })
      const sb = new Sandbox(parseSandboxfile('FROM host\\nWORKDIR .\\n'), { cwd: project, onViolation: (v) => reported(v) })
      const r = await sb.exec('head -c 4M /dev/zero > big; echo "exit $?"')
      console.log(JSON.stringify(r))
      // A full disk is below the floor too: the report comes (and kills
      // what runs then) before the next command.
      let timer
      const waited = new Promise((resolve) => { timer = setTimeout(() => resolve({ kind: 'no report in 4 s' }), 4000) })
      console.log((await Promise.race([floorCrossed, waited])).kind)
      clearTimeout(timer)
      console.log(JSON.stringify(await sb.exec('echo ok')))
      await sb.stop()
      // stop() takes the state dir out of its path at once and deletes it
      // just after, off its own path.
      const names = () => fs.readdirSync(state)
      console.log('at stop ' + JSON.stringify(names().filter((n) => n.startsWith('sb-'))))
      for (let i = 0; i < 200 && names().some((n) => n.startsWith('gone-')); i++) await new Promise((r) => setTimeout(r, 10))
      // The scratch tmpfs's mount point stays, empty, with the state root.
      console.log('left ' + JSON.stringify(names()) + ' ' + JSON.stringify(fs.readdirSync(state + '/scratch')))
      // The failed write happened in the sandbox's layer, not the project.
      console.log('project ' + JSON.stringify(fs.readdirSync(project)))
    `)
    expect(out.trim().split('\n')).toEqual([
      JSON.stringify({ exitCode: 0, stdout: 'exit 1\n', stderr: "head: error writing 'standard output': No space left on device\n" }),
      'limit',
      JSON.stringify({ exitCode: 0, stdout: 'ok\n', stderr: '' }),
      'at stop []',
      'left ["scratch"] []',
      'project []',
    ])
  })

  test('past the disk floor every process in the sandbox is killed and reported; the changes stay; it is watched again once there is room', () => {
    // A 64 MiB filesystem: the floor is a twentieth of it (3.2 MiB).
    const out = onSmallDisk('size=64m', `
      const reports = []
      const sb = new Sandbox(parseSandboxfile('FROM host\\nWORKDIR .\\nOUTPUT big\\n'), { cwd: project, onViolation: (v) => reports.push(v) })
      const fill = (name) => sb.exec('head -c 62M /dev/zero > ' + name + ' && echo written; sleep 60 & sleep 60; echo slept')
      const r = await fill('big')
      console.log(JSON.stringify(r))
      console.log(JSON.stringify(reports))
      console.log(JSON.stringify(await sb.diff()))
      // Nothing of the first command is left (its background sleep neither),
      // and the sandbox answers.
      console.log(JSON.stringify(await sb.exec('ps -e -o comm= | grep -c sleep; rm big; echo removed')))
      // Below the floor, nothing more is killed; with room again, it is watched
      // again (from the next check on: six of them pass here).
      await new Promise((resolve) => setTimeout(resolve, 1500))
      console.log(JSON.stringify(await fill('big2')))
      console.log(reports.length)
      await sb.stop()
      console.log('project ' + JSON.stringify(fs.readdirSync(project)))
    `)
    const lines = out.trim().split('\n')
    expect(lines[0]).toBe(JSON.stringify({ exitCode: 137, stdout: 'written\n', stderr: '' }))
    const reports = JSON.parse(lines[1])
    expect(reports).toHaveLength(1)
    expect(reports[0].kind).toBe('limit')
    expect(reports[0].detail).toMatch(
      /^the disk that holds the sandbox's changes \(the filesystem of \/.*\/state\) has \d+ bytes free, less than the sandbox's floor of 3355443 bytes: every process in the sandbox was killed so that the host keeps room; the changes are kept \(limits.diskBytes caps what a sandbox may write instead\)$/,
    )
    expect(JSON.parse(lines[2])).toEqual({ added: ['big'], modified: [], deleted: [] })
    expect(lines[3]).toBe(JSON.stringify({ exitCode: 0, stdout: '0\nremoved\n', stderr: '' }))
    expect(lines[4]).toBe(JSON.stringify({ exitCode: 137, stdout: 'written\n', stderr: '' }))
    expect(lines[5]).toBe('2')
    expect(lines[6]).toBe('project []')
  })

  test('a state directory that cannot be made is an error naming it', () => {
    const out = onSmallDisk('size=1m,nr_inodes=8', `
      let i = 0
      try { for (;;) fs.writeFileSync(state + '/f' + i++, '') } catch {}
      const sb = new Sandbox(parseSandboxfile('FROM host\\nWORKDIR .\\n'), { cwd: project })
      console.log(await sb.exec('true').then(() => 'started', (e) => e.message))
      await sb.stop()
    `)
    expect(out).toContain('cannot create a state directory in ')
    expect(out).toContain('No space left on device')
  })
})

describe.skipIf(!isRoot)('a WORKDIR with a filesystem mounted inside it', () => {
  test('is refused before anything starts, naming the mount', () => {
    const out = inMountNamespace((dir) => `mkdir -p "${dir}/project/cache" && mount -t tmpfs none "${dir}/project/cache"`, `
      const sb = new Sandbox(parseSandboxfile('FROM host\\nWORKDIR .\\n'), { cwd: project })
      console.log(await sb.exec('true').then(() => 'started', (e) => e.message))
      await sb.stop()
      console.log('project ' + JSON.stringify(fs.readdirSync(project)))
    `)
    expect(out.trim().split('\n')).toEqual([
      expect.stringMatching(/^WORKDIR \/.*\/project has another filesystem mounted inside it, at \/.*\/project\/cache: the kernel refuses a copy-on-write layer over it in a user namespace$/),
      'project ["cache"]',
    ])
  })
})

describe.skipIf(!isRoot || !existsSync('/srv'))('a host directory with a filesystem mounted below it', () => {
  test('is read-only and nodev inside all the way down: writes fail with EROFS, a device node with EACCES, the host keeps its files', () => {
    // /srv becomes a tmpfs with another (world-writable) tmpfs below it, in
    // the test's own mount namespace: the sandbox binds /srv read-only.
    // A device node there (like /dev/kmsg's) does not work inside either.
    const out = inMountNamespace(() => 'mount -t tmpfs none /srv && mkdir /srv/disk && mount -t tmpfs none /srv/disk && echo kept > /srv/disk/file && mknod -m 666 /srv/disk/null c 1 3', `
      const sb = new Sandbox(parseSandboxfile('FROM host\\nWORKDIR .\\n'), { cwd: project })
      const r = await sb.exec('cat /srv/disk/file; echo new > /srv/disk/file; touch /srv/disk/added; mkdir /srv/dir; echo x > /srv/disk/null; exit 0')
      console.log(JSON.stringify(r))
      await sb.stop()
      console.log('host ' + JSON.stringify(fs.readdirSync('/srv/disk').sort()) + ' ' + fs.readFileSync('/srv/disk/file', 'utf8').trim())
    `)
    expect(out.trim().split('\n')).toEqual([
      JSON.stringify({
        exitCode: 0,
        stdout: 'kept\n',
        stderr:
          '/bin/sh: 1: cannot create /srv/disk/file: Read-only file system\n' +
          "touch: cannot touch '/srv/disk/added': Read-only file system\n" +
          'mkdir: cannot create directory ‘/srv/dir’: Read-only file system\n' +
          '/bin/sh: 1: cannot create /srv/disk/null: Permission denied\n',
      }),
      'host ["file","null"] kept',
    ])
  })
})

describe.skipIf(!isRoot)('a state directory on an overlayfs (a container\'s /tmp)', () => {
  test('keeps the WORKDIR\'s layer on the scratch tmpfs: writes work, diff and extract see them, nothing is left', () => {
    const out = inMountNamespace((dir) => {
      const [lower, upper, work, state] = ['lower', 'upper', 'work', 'state'].map((d) => join(dir, d))
      return `mkdir -p "${lower}" "${upper}" "${work}" "${state}" && echo kept > "${dir}/project/file" && ` +
        `mount -t overlay -o lowerdir="${lower}",upperdir="${upper}",workdir="${work}" none "${state}" && ` +
        `export BUN_SANDBOX_STATE_DIR="${state}/root"`
    }, `
      const sb = new Sandbox(parseSandboxfile('FROM host\\nWORKDIR .\\nOUTPUT *\\n'), { cwd: project })
      const r = await sb.exec('cat file; echo new > made && echo changed > file && cat made file')
      console.log(JSON.stringify(r))
      console.log(JSON.stringify(await sb.diff()))
      console.log(JSON.stringify(await sb.extractOutputs(project)))
      await sb.stop()
      console.log(fs.readFileSync(project + '/file', 'utf8').trim() + ' ' + fs.readFileSync(project + '/made', 'utf8').trim())
      // Removed just after stop(), off its path (as above).
      const names = () => fs.readdirSync(state).filter((n) => n !== 'scratch')
      for (let i = 0; i < 200 && names().length > 0; i++) await new Promise((r) => setTimeout(r, 10))
      console.log('left ' + JSON.stringify(names()))
    `)
    expect(out.trim().split('\n')).toEqual([
      JSON.stringify({ exitCode: 0, stdout: 'kept\nnew\nchanged\n', stderr: '' }),
      JSON.stringify({ added: ['made'], modified: ['file'], deleted: [] }),
      JSON.stringify(['file', 'made']),
      'changed new',
      'left []',
    ])
  })
})

describe.skipIf(!isRoot)('a root host user with a WORKDIR that cannot be idmapped (on an overlay)', () => {
  test('gets a sandbox whose user is uid 0 outside, a warning that says so (once), and root\'s credential views masked', () => {
    const { stdout, stderr } = inMountNamespaceWithStderr((dir) => {
      const [lower, upper, work] = ['lower', 'upper', 'work'].map((d) => join(dir, d))
      return `mkdir -p "${lower}" "${upper}" "${work}" && echo kept > "${lower}/file" && ` +
        `mount -t overlay -o lowerdir="${lower}",upperdir="${upper}",workdir="${work}" none "${join(dir, 'project')}"`
    }, `
      const sb = new Sandbox(parseSandboxfile('FROM host\\nWORKDIR .\\n'), { cwd: project })
      const r = await sb.exec("tr -s ' ' < /proc/self/uid_map; cat file; echo changed > file && cat file; wc -c < /proc/keys")
      console.log(JSON.stringify(r))
      await sb.stop()
      // A second sandbox of the same WORKDIR: the same warning is not repeated.
      const again = new Sandbox(parseSandboxfile('FROM host\\nWORKDIR .\\n'), { cwd: project })
      console.log((await again.exec('cat file')).stdout.trim())
      await again.stop()
      console.log(fs.readFileSync(project + '/file', 'utf8').trim())
    `)
    expect(stdout.trim().split('\n')).toEqual([
      JSON.stringify({ exitCode: 0, stdout: ' 1000 0 1\nkept\nchanged\n0\n', stderr: '' }),
      'kept',
      'kept',
    ])
    expect(stderr).toMatch(/^bun-sandbox: warning: this sandbox's user is host uid 0 \(root\), not an unprivileged uid: idmap the mount of .*project .*: Invalid argument \(os error 22\); only a list of root's credential files is hidden from it\n$/)
  })
})
