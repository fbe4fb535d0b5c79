// The JavaScript API of SPEC §2 for the Sandboxfile engine, through the built addon.
import { describe, expect, test } from 'bun:test'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, writeFileSync, mkdirSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import {
  IsolatedSandbox,
  Sandbox,
  checkIsolationSupport,
  formatSandboxfile,
  inferSandboxfile,
  parseSandboxfile,
  parseSandboxfileFromPath,
  runIsolated,
  runSandbox,
  validateSandboxfile,
} from '..'

const FULL = `# Sandboxfile
FROM host
WORKDIR .

RUN bun install

DEV PORT=3000 WATCH=src/** bun run dev
SERVICE db PORT=5432 postgres -D ./pgdata
SERVICE worker WATCH=src/worker/** bun run worker.ts
TEST bun test

OUTPUT src/
OUTPUT package.json
LOGS logs/*

NET api.example.com
NET *.stripe.com
SECRET STRIPE_API_KEY
`

function thrown(fn: () => unknown): any {
  try {
    fn()
  } catch (e) {
    return e
  }
  throw new Error('expected a throw')
}

describe('parseSandboxfile', () => {
  test('the full example of SPEC §1 as a plain object', () => {
    expect(parseSandboxfile(FULL)).toEqual({
      from: 'host',
      workdir: '.',
      runCommands: ['bun install'],
      dev: { command: 'bun run dev', port: 3000, watch: 'src/**' },
      services: [
        { name: 'db', command: 'postgres -D ./pgdata', port: 5432 },
        { name: 'worker', command: 'bun run worker.ts', watch: 'src/worker/**' },
      ],
      tests: [{ command: 'bun test' }],
      outputs: ['src/', 'package.json'],
      logs: ['logs/*'],
      net: ['api.example.com', '*.stripe.com'],
      secrets: ['STRIPE_API_KEY'],
    })
  })

  test('optional fields are absent, not null or undefined-valued', () => {
    const r = parseSandboxfile('RUN true')
    expect(Object.keys(r).sort()).toEqual(
      ['logs', 'net', 'outputs', 'runCommands', 'secrets', 'services', 'tests'].sort(),
    )
    expect('from' in r).toBe(false)
    expect('secretHosts' in r).toBe(false)
  })

  test('INFER shorthand', () => {
    expect(parseSandboxfile('FROM host\nWORKDIR .\nINFER *\n')).toMatchObject({ from: 'host', workdir: '.', infer: '*' })
  })

  test('SERVICE with PORT first takes the first word as its name', () => {
    const r = parseSandboxfile('SERVICE PORT=5432 docker compose up postgres')
    expect(r.services).toEqual([{ name: 'docker', command: 'compose up postgres', port: 5432 }])
  })

  test('TEST options', () => {
    const r = parseSandboxfile('TEST bun test --filter unit\nTEST PORT=3001 bun test --filter integration')
    expect(r.tests).toEqual([
      { command: 'bun test --filter unit' },
      { command: 'bun test --filter integration', port: 3001 },
    ])
  })

  test('comments, blank lines and CRLF', () => {
    const r = parseSandboxfile('# a comment\r\n\r\nFROM host\r\n  # indented comment\r\nWORKDIR .\r\n')
    expect(r).toMatchObject({ from: 'host', workdir: '.' })
  })

  test('SECRET with hosts fills secretHosts', () => {
    const r = parseSandboxfile('NET api.example.com\nSECRET API_KEY api.example.com')
    expect(r.secrets).toEqual(['API_KEY'])
    expect(r.secretHosts).toEqual({ API_KEY: ['api.example.com'] })
  })

  const errors: [string, number, string, string][] = [
    ['FROM host\nBOGUS x', 2, 'BOGUS', 'Unknown directive: BOGUS'],
    ['FROM host\nFROM other', 2, 'FROM', 'Duplicate FROM directive'],
    ['WORKDIR .\n\nWORKDIR ..', 3, 'WORKDIR', 'Duplicate WORKDIR directive'],
    ['DEV a\nDEV b', 2, 'DEV', 'Duplicate DEV directive'],
    ['INFER *\nINFER *', 2, 'INFER', 'Duplicate INFER directive'],
    ['FROM', 1, 'FROM', 'FROM requires an argument'],
    ['WORKDIR', 1, 'WORKDIR', 'WORKDIR requires a path argument'],
    ['RUN', 1, 'RUN', 'RUN requires a command argument'],
    ['DEV', 1, 'DEV', 'DEV requires a command argument'],
    ['TEST', 1, 'TEST', 'TEST requires a command argument'],
    ['SERVICE', 1, 'SERVICE', 'SERVICE requires a name and command'],
    ['SERVICE PORT=5432', 1, 'SERVICE', 'Missing command in process definition'],
    ['DEV PORT=abc bun dev', 1, 'DEV', 'Invalid PORT value: abc'],
    ['OUTPUT', 1, 'OUTPUT', 'OUTPUT requires a path argument'],
    ['LOGS', 1, 'LOGS', 'LOGS requires a path pattern argument'],
    ['NET', 1, 'NET', 'NET requires a hostname argument'],
    ['SECRET', 1, 'SECRET', 'SECRET requires an environment variable name'],
    ['INFER', 1, 'INFER', 'INFER requires a pattern argument'],
    ['SECRET not-valid', 1, 'SECRET', 'SECRET name must be a valid environment variable name'],
  ]
  for (const [src, line, directive, message] of errors) {
    test(`error: ${message}`, () => {
      const e = thrown(() => parseSandboxfile(src))
      expect(e).toBeInstanceOf(Error)
      expect(e.message).toBe(`Line ${line}: ${message}`)
      expect(e.line).toBe(line)
      expect(e.directive).toBe(directive)
      expect(e.code).toBe('ERR_SANDBOXFILE_PARSE')
    })
  }

  test('non-string arguments are a TypeError', () => {
    for (const bad of [undefined, null, 1, {}, [], Buffer.from('FROM host')]) {
      const e = thrown(() => (parseSandboxfile as any)(bad))
      expect(e).toBeInstanceOf(TypeError)
      expect(e.code).toBe('ERR_INVALID_ARG_TYPE')
    }
  })

  test('odd text gives a result or an Error, never a crash', () => {
    for (const src of ['\0', '\uFEFFFROM host', 'FROM \uD800', 'RUN ' + 'x'.repeat(1 << 20), '\n'.repeat(100000)]) {
      try {
        parseSandboxfile(src)
      } catch (e) {
        expect(e).toBeInstanceOf(Error)
      }
    }
    expect(parseSandboxfile('\uFEFFFROM host').from).toBe('host')
  })
})

describe('parseSandboxfileFromPath', () => {
  const dir = mkdtempSync(join(tmpdir(), 'bun-sandbox-api-'))

  test('reads and parses a file', async () => {
    const path = join(dir, 'Sandboxfile')
    writeFileSync(path, FULL)
    expect(await parseSandboxfileFromPath(path)).toEqual(parseSandboxfile(FULL))
  })

  test('rejects with the parse error, line and directive', async () => {
    const path = join(dir, 'Broken')
    writeFileSync(path, 'FROM host\nRUN\n')
    const e: any = await parseSandboxfileFromPath(path).catch((e) => e)
    expect(e.message).toBe('Line 2: RUN requires a command argument')
    expect(e.line).toBe(2)
    expect(e.directive).toBe('RUN')
  })

  test('a missing file rejects with a clear error', async () => {
    const e: any = await parseSandboxfileFromPath(join(dir, 'nope')).catch((e) => e)
    expect(e).toBeInstanceOf(Error)
    expect(e.code).toBe('ERR_SANDBOXFILE_READ')
    expect(e.message).toContain('nope')
  })

  test('a non-string path is a TypeError', () => {
    expect(() => (parseSandboxfileFromPath as any)(42)).toThrow(TypeError)
  })
})

describe('formatSandboxfile', () => {
  test('parse(format(x)) deep-equals x', () => {
    const sources = [
      FULL,
      'FROM host\nWORKDIR .\nINFER *\n',
      'SERVICE PORT=5432 docker compose up postgres',
      'TEST PORT=3001 WATCH=x bun test\nTEST a  b\tc',
      'NET api.example.com\nSECRET A api.example.com b.test\nSECRET B\nSECRET A',
      'DEV WATCH= bun dev',
    ]
    for (const src of sources) {
      const x = parseSandboxfile(src)
      expect(parseSandboxfile(formatSandboxfile(x))).toEqual(x)
    }
  })

  test('refuses what a Sandboxfile cannot express, naming the field', () => {
    const e = thrown(() => formatSandboxfile({ ...parseSandboxfile(''), runCommands: ['a\nb'] }))
    expect(e.code).toBe('ERR_SANDBOXFILE_FORMAT')
    expect(e.message).toContain('runCommands[0]')
  })

  test('a value of the wrong shape is a TypeError', () => {
    expect(() => (formatSandboxfile as any)('FROM host')).toThrow(TypeError)
    expect(() => (formatSandboxfile as any)({ runCommands: 'x' })).toThrow(TypeError)
    expect(() => (formatSandboxfile as any)({ dev: { port: 3000 } })).toThrow(/command/)
  })
})

describe('validateSandboxfile', () => {
  test('returns errors and warnings', () => {
    const r = validateSandboxfile(parseSandboxfile(FULL))
    expect(Array.isArray(r.errors)).toBe(true)
    expect(Array.isArray(r.warnings)).toBe(true)
  })

  test('a public-suffix wildcard is an error', () => {
    const r = validateSandboxfile(parseSandboxfile('FROM host\nNET *.com'))
    expect(r.errors.join('\n')).toContain('*.com')
  })

  test('a value of the wrong shape is a TypeError', () => {
    expect(() => (validateSandboxfile as any)(null)).toThrow(TypeError)
  })
})

describe('inferSandboxfile', () => {
  test('a package.json project', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'bun-sandbox-infer-'))
    mkdirSync(join(dir, 'src'))
    writeFileSync(
      join(dir, 'package.json'),
      JSON.stringify({ scripts: { dev: 'bun --watch src/index.ts', test: 'bun test' } }),
    )
    const r = await inferSandboxfile(dir)
    expect(r.from).toBe('host')
    expect(r.workdir).toBe('.')
    expect(r.dev).toEqual({ command: 'bun run dev' })
    expect(r.tests).toEqual([{ command: 'bun run test' }])
    expect(r.outputs).toContain('package.json')
    expect(r.outputs).toContain('src/')
    expect(parseSandboxfile(formatSandboxfile(r))).toEqual(r)
    expect(validateSandboxfile(r).errors).toEqual([])
  })

  test('a directory that does not exist rejects', async () => {
    const e: any = await inferSandboxfile('/nonexistent/bun-sandbox-dir').catch((e) => e)
    expect(e).toBeInstanceOf(Error)
    expect(e.code).toBe('ERR_SANDBOXFILE_INFER')
  })
})

describe('the rest of the API', () => {
  test('IsolatedSandbox is Sandbox', () => {
    expect(IsolatedSandbox).toBe(Sandbox)
  })

  test('runSandbox: a Sandbox for a file, WORKDIR against its directory', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'bun-sandbox-rs-'))
    mkdirSync(join(dir, 'app'))
    writeFileSync(join(dir, 'Sandboxfile'), 'FROM host\nWORKDIR app\n')
    const sb = await runSandbox(join(dir, 'Sandboxfile'))
    expect(sb).toBeInstanceOf(Sandbox)
    expect((await sb.exec('pwd')).stdout).toBe(`${require('node:fs').realpathSync(join(dir, 'app'))}\n`)
    await sb.stop()
    const missing: any = await runSandbox(join(dir, 'nope')).catch((e: unknown) => e)
    expect(missing.code).toBe('ERR_SANDBOXFILE_READ')
    await expect((runSandbox as any)(42)).rejects.toThrow(TypeError)
  })

  test('checkIsolationSupport reports each capability', async () => {
    const s = await checkIsolationSupport()
    expect(typeof s.supported).toBe('boolean')
    for (const k of ['userNamespaces', 'overlayfs', 'seccomp', 'cgroups'] as const) expect(typeof s[k]).toBe('boolean')
    expect(Array.isArray(s.reasons)).toBe(true)
    if (!s.cgroups) expect(s.reasons.join('\n')).toContain('cgroup')
  })

  test.skipIf(process.getuid!() !== 0)(
    "checkIsolationSupport as root says when a WORKDIR (the cwd) cannot be idmapped, so its sandbox's user is host uid 0",
    () => {
      // sysfs takes no idmapped mount; this project's directory does.
      const script = `require(${JSON.stringify(join(import.meta.dir, '..'))}).checkIsolationSupport().then((s) => console.log(JSON.stringify(s.reasons.filter((r) => r.startsWith('as root')))))`
      const run = (cwd: string) => {
        const r = spawnSync(process.execPath, ['-e', script], { cwd, encoding: 'utf8' })
        expect(r.status).toBe(0)
        return JSON.parse(r.stdout)
      }
      const [reason, ...more] = run('/sys')
      expect(more).toEqual([])
      expect(reason).toStartWith('as root, a sandbox whose WORKDIR is /sys runs as host uid 0, not an unprivileged uid: idmap the mount of /sys')
      expect(reason).toEndWith("; only a list of root's credential files is hidden from it")
      expect(run(join(import.meta.dir, '..'))).toEqual([])
    },
    30_000,
  )

  test('runIsolated runs one command and reports the OUTPUT changes', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'bun-sandbox-ri-'))
    writeFileSync(join(dir, 'keep.txt'), 'before')
    const config = parseSandboxfile('FROM host\nWORKDIR .\nOUTPUT out/\n')
    const r = await runIsolated(['/bin/sh', '-c', 'mkdir out && echo a > out/a.txt && echo after > keep.txt && echo ok'], config, {
      cwd: dir,
    })
    expect(r).toEqual({ success: true, exitCode: 0, stdout: 'ok\n', stderr: '', modifiedFiles: ['out/a.txt'], extractedFiles: [] })
    expect(require('node:fs').readFileSync(join(dir, 'keep.txt'), 'utf8')).toBe('before')
    expect(require('node:fs').existsSync(join(dir, 'out'))).toBe(false)
  })

  test('isNetworkAllowed uses the NET matcher', () => {
    const sb = new Sandbox(parseSandboxfile('NET api.example.com\nNET *.example.test:8443'))
    expect(sb.isNetworkAllowed('api.example.com')).toBe(true)
    expect(sb.isNetworkAllowed('API.EXAMPLE.COM.')).toBe(true)
    expect(sb.isNetworkAllowed('evilexample.com')).toBe(false)
    expect(sb.isNetworkAllowed('a.example.test:8443')).toBe(true)
    expect(sb.isNetworkAllowed('a.example.test:80')).toBe(false)
    expect(sb.isNetworkAllowed('example.test:8443')).toBe(false)
  })

  test('isolation "none" is refused, never silently granted', () => {
    expect(() => new Sandbox(parseSandboxfile('RUN true'), { isolation: 'none' })).toThrow(/only runs commands isolated/)
  })
})

describe('Symbol.asyncDispose', () => {
  test('is stop()', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'bun-sandbox-dispose-'))
    let sandbox: Sandbox | undefined
    {
      await using sb = new Sandbox(parseSandboxfile('FROM host\nWORKDIR .'), { cwd: dir })
      sandbox = sb
      const running = sb.exec('sleep 30')
      while (!sb.isRunning()) await Bun.sleep(5)
      expect(sb.getStatus().map((p) => p.type)).toEqual(['exec'])
      running.catch(() => {})
    }
    expect(sandbox!.isRunning()).toBe(false)
    await expect(sandbox!.exec('true')).rejects.toThrow(/stopped/)
  })
})
