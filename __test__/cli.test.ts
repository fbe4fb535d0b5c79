// The command line (SPEC §5), run as a subprocess under both Node and Bun.
import { afterAll, describe, expect, test } from 'bun:test'
import { spawnSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { parseSandboxfile } from '..'

const ROOT = resolve(import.meta.dir, '..')
const CLI = join(ROOT, 'bin', 'bun-sandbox.js')
const VERSION = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).version
const NODE = Bun.which('node')
const BUN = process.execPath // inside `bun test`, the bun binary
const RUNTIMES = [
  ['node', NODE],
  ['bun', BUN],
].filter(([, bin]) => bin) as [string, string][]
const ANSI = /\x1b\[/

const scratch = mkdtempSync(join(tmpdir(), 'bun-sandbox-cli-'))
afterAll(() => rmSync(scratch, { recursive: true, force: true }))

let counter = 0
/** A fresh directory with the given files (path -> content; content null = directory). */
function project(files: Record<string, string | null>): string {
  const dir = join(scratch, `p${counter++}`)
  mkdirSync(dir, { recursive: true })
  for (const [name, content] of Object.entries(files)) {
    const p = join(dir, name)
    if (content === null) mkdirSync(p, { recursive: true })
    else {
      mkdirSync(join(p, '..'), { recursive: true })
      writeFileSync(p, content)
    }
  }
  return dir
}

// ---------------------------------------------------------------------------

type Result = { code: number | null; stdout: string; stderr: string }

function cli(
  args: string[],
  { runtime = BUN, cwd = scratch, env = {} }: { runtime?: string; cwd?: string; env?: Record<string, string> } = {},
): Result {
  const base = { ...process.env }
  for (const k of ['NO_COLOR', 'FORCE_COLOR', 'NODE_EXTRA_CA_CERTS', 'CI']) delete base[k]
  const r = spawnSync(runtime, [CLI, ...args], { cwd, env: { ...base, ...env }, encoding: 'utf8', timeout: 30_000 })
  if (r.error) throw r.error
  return { code: r.status, stdout: r.stdout, stderr: r.stderr }
}

/** Every stdout line is a JSON object with a type. */
function jsonLines(stdout: string): any[] {
  const lines = stdout.split('\n').filter((l) => l !== '')
  return lines.map((l) => {
    const event = JSON.parse(l)
    expect(typeof event.type).toBe('string')
    return event
  })
}

const GOOD = `# a complete, valid Sandboxfile
FROM host
WORKDIR .
RUN bun install
RUN bun run build
DEV PORT=3000 bun run dev
SERVICE db PORT=5432 postgres -D ./pgdata
TEST bun test
OUTPUT src/
OUTPUT package.json
OUTPUT bun.lock
NET api.example.com
NET *.example.test
SECRET API_KEY api.example.com
`
const MALFORMED = 'FROM host\nWORKDIR .\n  BOGUS  thing\nRUN true\n'

describe.each(RUNTIMES)('under %s', (_name, runtime) => {
  test('--version prints the package.json version', () => {
    const r = cli(['--version'], { runtime })
    expect(r).toEqual({ code: 0, stdout: `${VERSION}\n`, stderr: '' })
  })

  test('--help and -h list every command and option, exit 0', () => {
    for (const flag of ['--help', '-h']) {
      const r = cli([flag], { runtime })
      expect(r.code).toBe(0)
      for (const word of ['run', 'test', 'exec', 'infer', 'validate', 'extract', '--json', '--no-color', '--env', '--output', '--watch', '--verbose', '--version']) {
        expect(r.stdout).toContain(word)
      }
      expect(r.stderr).toBe('')
    }
  })

  test('validate of a good file: summary with the counts, exit 0', () => {
    const dir = project({ Sandboxfile: GOOD })
    const r = cli(['validate'], { runtime, cwd: dir })
    expect(r.code).toBe(0)
    expect(r.stdout).toContain('valid')
    expect(r.stdout).not.toContain('invalid')
    expect(r.stdout).toContain('2 RUN, dev on :3000, 1 service, 1 test, 3 outputs, 2 NET hosts, 1 secret')
    expect(r.stdout).not.toMatch(ANSI) // piped: no colours
  })

  test('a malformed file: path:LINE: message plus the line text, exit 1', () => {
    const dir = project({ Sandboxfile: MALFORMED })
    const r = cli(['validate'], { runtime, cwd: dir })
    expect(r.code).toBe(1)
    expect(r.stdout).toContain('Sandboxfile:3: error: Unknown directive: BOGUS')
    expect(r.stdout).toContain('  BOGUS  thing')
    expect(r.stdout).toContain('invalid')
  })

  test('usage errors exit 2 with a hint to run --help', () => {
    const dir = project({ Sandboxfile: GOOD })
    for (const args of [['--bogus'], ['validate', '--frobnicate'], ['frobnicate'], ['run', '-e', 'NOEQUALS']]) {
      const r = cli(args, { runtime, cwd: dir })
      expect(r.code).toBe(2)
      expect(r.stderr).toContain('--help')
      expect(r.stdout).toBe('')
    }
  })

  test('run/test/exec/extract report a malformed file\'s parse error first', () => {
    const dir = project({ Sandboxfile: MALFORMED })
    for (const args of [['run'], ['test'], ['exec', '--', 'true'], ['extract', '-o', 'out']]) {
      const r = cli(args, { runtime, cwd: dir })
      expect(r.code).toBe(1)
      expect(r.stderr).toContain('Sandboxfile:3: error: Unknown directive: BOGUS')
      expect(r.stderr).not.toContain('not available')
    }
  })

  test('--json: one JSON object per line, no colours, exit code kept', () => {
    const good = project({ Sandboxfile: GOOD })
    const bad = project({ Sandboxfile: MALFORMED })
    const ok = cli(['validate', '--json'], { runtime, cwd: good, env: { FORCE_COLOR: '1' } })
    expect(ok.code).toBe(0)
    expect(ok.stdout).not.toMatch(ANSI)
    const events = jsonLines(ok.stdout)
    expect(events.at(-1)).toMatchObject({ type: 'summary', valid: true, errors: 0 })
    expect(events.at(-1).config).toEqual(parseSandboxfile(GOOD))

    const ko = cli(['validate', '--json'], { runtime, cwd: bad })
    expect(ko.code).toBe(1)
    expect(ko.stderr).toBe('')
    expect(jsonLines(ko.stdout)).toEqual([
      expect.objectContaining({ type: 'error', message: 'Unknown directive: BOGUS', line: 3, file: join(bad, 'Sandboxfile') }),
      expect.objectContaining({ type: 'summary', valid: false, errors: 1 }),
    ])
  })
})

describe('arguments', () => {
  test('the Sandboxfile argument may be a file or a directory', () => {
    const dir = project({ 'proj/Sandboxfile': GOOD, 'proj/other.sandbox': 'RUN true\n' })
    expect(cli(['validate', 'proj'], { cwd: dir }).code).toBe(0)
    expect(cli(['validate', 'proj/Sandboxfile'], { cwd: dir }).code).toBe(0)
    const other = cli(['validate', join(dir, 'proj', 'other.sandbox')], { cwd: scratch })
    expect(other.code).toBe(0)
    expect(other.stdout).toContain('1 RUN')
  })

  test('a missing Sandboxfile is a clear failure (exit 1), not a usage error', () => {
    const dir = project({})
    const r = cli(['validate'], { cwd: dir })
    expect(r.code).toBe(1)
    expect(r.stderr).toContain('no Sandboxfile at Sandboxfile')
    expect(r.stderr).toContain('bun-sandbox infer')
  })

  test('per-command help', () => {
    const r = cli(['validate', '--help'])
    expect(r.code).toBe(0)
    expect(r.stdout).toContain('Usage: bun-sandbox validate')
    expect(r.stdout).not.toContain('--force') // an infer option
    const h = cli(['help', 'exec'])
    expect(h.code).toBe(0)
    expect(h.stdout).toContain('Usage: bun-sandbox exec')
    expect(h.stdout).toContain('-- CMD')
  })

  test('usage errors: each exits 2 and names the problem', () => {
    const dir = project({ Sandboxfile: GOOD })
    const cases: [string[], string][] = [
      [['valdate'], "unknown command 'valdate' (did you mean 'validate'?)"],
      [['exec'], 'exec needs a command after --'],
      [['exec', '--'], 'exec needs a command after --'],
      [['extract'], 'extract requires -o/--output'],
      [['run', '-e', '=x'], "bad --env value '=x'"],
      [['run', '--env', '1A=b'], "bad --env value '1A=b'"],
      [['validate', '-o', 'x'], 'validate does not take -o'],
      [['validate', 'a', 'b'], 'validate takes at most one Sandboxfile'],
      [['test', '--', 'ls'], 'test does not take a command after --'],
      [['infer', '-o'], 'option -o/--output needs a value'],
      [['--verbose=yes'], 'option --verbose does not take a value'],
      [['help', 'nope'], "unknown command 'nope'"],
    ]
    for (const [args, message] of cases) {
      const r = cli(args, { cwd: dir })
      expect({ args, code: r.code }).toEqual({ args, code: 2 })
      expect(r.stderr).toContain(message)
    }
  })

  test('a usage error in --json mode is a JSON error event', () => {
    const r = cli(['--json', '--bogus'])
    expect(r.code).toBe(2)
    expect(jsonLines(r.stdout)).toEqual([{ type: 'error', message: 'unknown option --bogus', code: 'usage' }])
  })

  test('--version and --help in --json mode', () => {
    expect(jsonLines(cli(['--version', '--json']).stdout)).toEqual([{ type: 'version', version: VERSION }])
    const [help] = jsonLines(cli(['validate', '--help', '--json']).stdout)
    expect(help).toMatchObject({ type: 'help', command: 'validate' })
    expect(help.text).toContain('Usage: bun-sandbox validate')
  })

  test('valid -e K=V values and grouped short flags are accepted', () => {
    const dir = project({ Sandboxfile: MALFORMED })
    // the file is malformed, so it fails with 1 (not 2): the arguments were fine
    const r = cli(['run', '-e', 'A=1', '-eB=', '--env=C=x=y', '-vw', '-o', 'out'], { cwd: dir })
    expect(r.code).toBe(1)
    expect(r.stderr).toContain('Unknown directive')
  })
})

describe('colours', () => {
  const dir = project({ Sandboxfile: 'WORKDIR missing-dir\n' })

  test('none when piped, with NO_COLOR, or with --no-color; FORCE_COLOR=1 forces them', () => {
    expect(cli(['validate'], { cwd: dir }).stdout).not.toMatch(ANSI)
    expect(cli(['validate'], { cwd: dir, env: { NO_COLOR: '1' } }).stdout).not.toMatch(ANSI)
    const forced = cli(['validate'], { cwd: dir, env: { FORCE_COLOR: '1' } })
    expect(forced.code).toBe(1)
    expect(forced.stdout).toMatch(ANSI)
    expect(forced.stdout).toContain('\x1b[31m') // red error
    // NO_COLOR and --no-color win over FORCE_COLOR
    expect(cli(['validate'], { cwd: dir, env: { FORCE_COLOR: '1', NO_COLOR: '1' } }).stdout).not.toMatch(ANSI)
    expect(cli(['validate', '--no-color'], { cwd: dir, env: { FORCE_COLOR: '1' } }).stdout).not.toMatch(ANSI)
    expect(cli(['validate'], { cwd: dir, env: { FORCE_COLOR: '0' } }).stdout).not.toMatch(ANSI)
    // an empty NO_COLOR does not count
    expect(cli(['validate'], { cwd: dir, env: { FORCE_COLOR: '1', NO_COLOR: '' } }).stdout).toMatch(ANSI)
  })

  const SCRIPT = Bun.which('script')
  test.skipIf(!SCRIPT)('on a terminal (a pty via script(1)): colours, unless NO_COLOR', () => {
    const onTty = (env: Record<string, string>) =>
      spawnSync(SCRIPT!, ['-qec', `${BUN} ${CLI} validate`, '/dev/null'], {
        cwd: dir, encoding: 'utf8', env: { ...process.env, FORCE_COLOR: '', TERM: 'xterm', ...env },
      }).stdout
    expect(onTty({ NO_COLOR: '' })).toMatch(ANSI)
    expect(onTty({ NO_COLOR: '1' })).not.toMatch(ANSI)
  })
})

describe('validate: checks relative to the Sandboxfile directory', () => {
  test('WORKDIR resolves against the Sandboxfile directory, not the cwd', () => {
    const root = project({ 'proj/Sandboxfile': 'WORKDIR app\nRUN true\n', 'proj/app': null, 'elsewhere/app-only-here': null })
    // run from a different cwd, where ./app does not exist
    const ok = cli(['validate', join(root, 'proj')], { cwd: join(root, 'elsewhere') })
    expect(ok.code).toBe(0)

    // a WORKDIR that only exists relative to the cwd is an error
    writeFileSync(join(root, 'proj', 'Sandboxfile'), 'RUN true\nWORKDIR app-only-here\n')
    const ko = cli(['validate', join(root, 'proj')], { cwd: join(root, 'elsewhere') })
    expect(ko.code).toBe(1)
    expect(ko.stdout).toContain(':2: error: WORKDIR app-only-here does not exist')
    expect(ko.stdout).toContain(join(root, 'proj', 'app-only-here'))
  })

  test('WORKDIR that is a file is an error', () => {
    const dir = project({ Sandboxfile: 'WORKDIR notes.txt\n', 'notes.txt': 'hi' })
    const j = cli(['validate', dir, '--json'])
    expect(j.code).toBe(1)
    expect(jsonLines(j.stdout)[0]).toMatchObject({ type: 'error', line: 1, message: expect.stringContaining('is not a directory') })
  })

  test('FROM: a root filesystem directory next to the Sandboxfile is fine; a missing path or an image is an error', () => {
    const root = project({ 'proj/rootfs/usr/bin': null, 'proj/Sandboxfile': 'FROM ./rootfs\nRUN true\n', cwd: null })
    expect(cli(['validate', join(root, 'proj')], { cwd: join(root, 'cwd') }).code).toBe(0)

    writeFileSync(join(root, 'proj', 'Sandboxfile'), 'FROM ./no-such-rootfs\n')
    const missing = cli(['validate', join(root, 'proj')], { cwd: join(root, 'cwd') })
    expect(missing.code).toBe(1)
    expect(missing.stdout).toContain('FROM ./no-such-rootfs does not exist')

    writeFileSync(join(root, 'proj', 'Sandboxfile'), 'FROM ubuntu:22.04\n')
    const image = cli(['validate', join(root, 'proj')], { cwd: join(root, 'cwd') })
    expect(image.code).toBe(1)
    expect(image.stdout).toContain('FROM')
  })

  test('NET *.com is an error, reported by the CLI', () => {
    const dir = project({ Sandboxfile: 'NET *.com\n' })
    const r = cli(['validate', '--json'], { cwd: dir })
    expect(r.code).toBe(1)
    const events = jsonLines(r.stdout)
    expect(events.some((e) => e.type === 'error')).toBe(true)
    expect(events.at(-1)).toMatchObject({ type: 'summary', valid: false })
  })
})

describe('infer', () => {
  test('-o refuses to overwrite an existing Sandboxfile (exit 1), unchanged', () => {
    const dir = project({ 'package.json': '{"scripts":{"test":"bun test"}}', Sandboxfile: 'RUN keep-me\n' })
    const r = cli(['infer', dir, '-o', dir])
    expect(r.code).toBe(1)
    expect(r.stderr).toContain('already exists')
    expect(r.stderr).toContain('--force')
    expect(readFileSync(join(dir, 'Sandboxfile'), 'utf8')).toBe('RUN keep-me\n')
  })

  test('a directory that does not exist is an error', () => {
    const r = cli(['infer', join(scratch, 'no-such-dir')])
    expect(r.code).toBe(1)
    expect(r.stderr).toContain('is not a directory')
  })

  test('infer prints a Sandboxfile that parses; package.json "test" gives TEST', () => {
    const dir = project({ 'package.json': '{"scripts":{"test":"bun test"}}' })
    for (const [, runtime] of RUNTIMES) {
      const r = cli(['infer', dir], { runtime })
      expect(r.code).toBe(0)
      expect(r.stdout).toContain('TEST')
      expect(parseSandboxfile(r.stdout).tests.length).toBeGreaterThan(0)
    }
    const [event] = jsonLines(cli(['infer', dir, '--json']).stdout)
    expect(event.type).toBe('sandboxfile')
    expect(parseSandboxfile(event.text)).toEqual(event.config)
  })

  test('infer -o DIR writes DIR/Sandboxfile, --force overwrites', () => {
    const dir = project({ 'package.json': '{"scripts":{"test":"bun test"}}' })
    const out = join(dir, 'new-out')
    const r = cli(['infer', dir, '-o', out])
    expect(r.code).toBe(0)
    expect(r.stdout).toBe('')
    expect(r.stderr).toContain('wrote')
    const written = readFileSync(join(out, 'Sandboxfile'), 'utf8')
    expect(written).toContain('TEST')
    writeFileSync(join(out, 'Sandboxfile'), 'RUN old\n')
    expect(cli(['infer', dir, '-o', out]).code).toBe(1)
    expect(cli(['infer', dir, '-o', out, '--force']).code).toBe(0)
    expect(readFileSync(join(out, 'Sandboxfile'), 'utf8')).toBe(written)
  })
})

describe('run, test, exec, extract', () => {
  test('an invalid file (WORKDIR missing) is refused before anything starts', () => {
    const dir = project({ Sandboxfile: 'WORKDIR gone\nTEST true\n' })
    const r = cli(['test'], { cwd: dir })
    expect(r.code).toBe(1)
    expect(r.stderr).toContain('WORKDIR gone does not exist')
    expect(r.stderr).toContain('nothing was started')
  })

  test('test with no TEST line fails: nothing was tested', () => {
    const dir = project({ Sandboxfile: 'RUN true\n' })
    const r = cli(['test'], { cwd: dir })
    expect(r.code).toBe(1)
    expect(r.stderr).toContain('no TEST line')
  })
})

describe('installed as a package bin', () => {
  test('runs through a node_modules/.bin symlink (npx / bunx), shebang and all', () => {
    const dir = project({ 'node_modules/.bin': null })
    symlinkSync(ROOT, join(dir, 'node_modules', 'bun-sandbox'))
    const bin = join(dir, 'node_modules', '.bin', 'bun-sandbox')
    symlinkSync('../bun-sandbox/bin/bun-sandbox.js', bin)
    writeFileSync(join(dir, 'Sandboxfile'), GOOD)
    const env = { ...process.env, PATH: `${join(dir, 'node_modules', '.bin')}:${process.env.PATH}` }
    delete env.NODE_EXTRA_CA_CERTS
    const version = spawnSync('bun-sandbox', ['--version'], { cwd: dir, env, encoding: 'utf8' })
    expect(version.status).toBe(0)
    expect(version.stdout).toBe(`${VERSION}\n`)
    const validate = spawnSync(bin, ['validate'], { cwd: dir, env, encoding: 'utf8' })
    expect(validate.status).toBe(0)
    expect(validate.stdout).toContain('valid')
  })
})

describe('process output on a terminal', () => {
  const { Reporter } = require('../bin/lib/output.js')
  const lines = (isTTY: boolean, text: string) => {
    let written = ''
    const stream = { isTTY, write: (s: string) => (written += s) }
    const r = new Reporter({ stdout: stream, stderr: stream, env: { NO_COLOR: '1' } })
    r.processOutput('dev', 'stdout', text)
    r.flushProcess('dev')
    return written
  }

  test("cannot drive the user's terminal: colours pass, other escapes and controls show as in cat -v", () => {
    const hostile = 'clip \x1b]52;c;ZWNobyBoaQ==\x07|title \x1b]0;x\x1b\\|up \x1b[1A\x1b[2K|cr a\rb|c1 \u009b2J|\x1b[31mred\x1b[0m\ttab\r\n'
    expect(lines(true, hostile)).toBe(
      'dev | clip ^[]52;c;ZWNobyBoaQ==^G|title ^[]0;x^[\\|up ^[[1A^[[2K|cr a^Mb|c1 M-^[2J|\x1b[31mred\x1b[0m\ttab\n',
    )
  })

  test('is passed as it is to a pipe or a file', () => {
    expect(lines(false, 'a\x1b]52;c;eA==\x07b\n')).toBe('dev | a\x1b]52;c;eA==\x07b\n')
  })
})
