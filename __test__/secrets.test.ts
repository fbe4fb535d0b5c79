// SPEC §4 Secrets: the sandbox may use a SECRET but never read it. Local
// upstream servers (plain and TLS, with a test CA made here) stand in for the
// hosts NET allows; each test tries to get the real value out and asserts
// what comes back instead.
import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { spawnSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import http from 'node:http'
import https from 'node:https'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { parseSandboxfile, type SandboxOptions, type SandboxViolation } from '..'
import { sandboxes, until } from './support'

const VALUE = 'sk-live-7f3a9c1e5b2d4068a1c3e5f7'
const OTHER_VALUE = 'ghp_0123456789abcdefghijABCDEFGHIJ'

const work = mkdtempSync(join(tmpdir(), 'bun-sandbox-secrets-'))
const project = () => mkdtempSync(join(work, 'project-'))
const sandbox = sandboxes(project)

// ---------- a test CA and the upstreams ----------

function sh(cmd: string, args: string[], cwd = work) {
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8' })
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${r.stderr || r.error}`)
  return r.stdout
}

/** A CA and a certificate for the test hosts, with the openssl command line. */
function makeTestCa() {
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes']
  sh('openssl', ['req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=bun-sandbox test CA',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'])
  sh('openssl', ['req', ...ec, '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=api.example.com'])
  writeFileSync(join(work, 'server.ext'), 'subjectAltName=DNS:api.example.com,DNS:other.example.test\nextendedKeyUsage=serverAuth\n')
  sh('openssl', ['x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '2',
    '-out', 'server.pem', '-extfile', 'server.ext'])
  return { ca: readFileSync(join(work, 'ca.pem'), 'utf8'), key: readFileSync(join(work, 'server.key')), cert: readFileSync(join(work, 'server.pem')) }
}

type Seen = { tls: boolean; host: string; url: string; authorization?: string; body: string }
const seen: Seen[] = []
/** Static files served under a path prefix (a git repository, a registry). */
const files = new Map<string, { body: Buffer; type: string; auth?: string[] }>()

function handler(tls: boolean) {
  return (req: http.IncomingMessage, res: http.ServerResponse) => {
    const chunks: Buffer[] = []
    req.on('data', (c) => chunks.push(c))
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString()
      const path = (req.url ?? '/').split('?')[0]
      seen.push({ tls, host: String(req.headers.host), url: req.url ?? '', authorization: req.headers.authorization, body })
      const file = files.get(path)
      if (file) {
        if (file.auth && !file.auth.includes(String(req.headers.authorization))) {
          res.writeHead(401, { 'content-type': 'text/plain', 'www-authenticate': 'Basic realm="test"' }).end('wrong credentials\n')
          return
        }
        res.writeHead(200, { 'content-type': file.type, 'content-length': file.body.length }).end(file.body)
        return
      }
      if (path === '/compressed') {
        res.writeHead(200, { 'content-type': 'text/plain', 'content-encoding': 'gzip' }).end(Bun.gzipSync(`got ${req.headers.authorization}`))
        return
      }
      // Echoes what it received: the sandbox must see placeholders in it.
      res.writeHead(200, { 'content-type': 'text/plain', 'x-echo': String(req.headers.authorization ?? '') })
      res.end(`auth=${req.headers.authorization ?? ''} body=${body} url=${req.url}`)
    })
  }
}

let testCa = ''
let httpsServer: https.Server
let httpServer: http.Server
let resolve: Record<string, string> = {}

beforeAll(async () => {
  const { ca, key, cert } = makeTestCa()
  testCa = ca
  httpsServer = https.createServer({ key, cert }, handler(true))
  httpServer = http.createServer(handler(false))
  await new Promise<void>((r) => httpsServer.listen(0, '127.0.0.1', r))
  await new Promise<void>((r) => httpServer.listen(0, '127.0.0.1', r))
  const tlsPort = (httpsServer.address() as any).port
  const plainPort = (httpServer.address() as any).port
  resolve = {}
  for (const host of ['api.example.com', 'other.example.test']) {
    resolve[`${host}:443`] = `127.0.0.1:${tlsPort}`
    resolve[`${host}:80`] = `127.0.0.1:${plainPort}`
  }
})
afterAll(() => {
  httpsServer?.close()
  httpServer?.close()
})

const NET = 'NET api.example.com\nNET other.example.test\n'

function secretSandbox(secretLines: string, options: SandboxOptions = {}) {
  const events: SandboxViolation[] = []
  const dir = options.cwd ?? project()
  const sb = sandbox(parseSandboxfile(`FROM host\nWORKDIR .\n${NET}${secretLines}`), {
    cwd: dir,
    env: { API_KEY: VALUE, GH_TOKEN: OTHER_VALUE },
    onViolation: (e) => void events.push(e),
    ...options,
    network: { resolve, extraCaCerts: testCa, ...options.network },
  })
  return { sb, events, dir }
}

const curl = (args: string) => `curl -sS -m 10 ${args}`
const lastSeen = (url: string) => seen.filter((s) => s.url === url).at(-1)

describe('SECRET with the proxy (the default)', () => {
  test('inside, the variable holds a placeholder of the same length, never the value', async () => {
    const { sb } = secretSandbox('SECRET API_KEY api.example.com\n')
    const r = await sb.exec('printenv API_KEY; cat /proc/self/environ | tr "\\0" "\\n" | grep -c API_KEY')
    const [placeholder, count] = r.stdout.trim().split('\n')
    expect(placeholder).toHaveLength(VALUE.length)
    expect(placeholder).toMatch(/^[A-Za-z0-9]+$/)
    expect(placeholder).not.toBe(VALUE)
    expect(count).toBe('1')
    // Not even options.env, where the value came from, puts it inside.
    const grep = await sb.exec(['grep', '-c', VALUE, '/proc/self/environ'])
    expect(grep).toEqual({ exitCode: 1, stdout: '0\n', stderr: '' })
  })

  test('placeholders are random per sandbox', async () => {
    const a = await secretSandbox('SECRET API_KEY\n').sb.exec('printenv API_KEY')
    const b = await secretSandbox('SECRET API_KEY\n').sb.exec('printenv API_KEY')
    expect(a.stdout).not.toBe(b.stdout)
  })

  test('over HTTPS the upstream gets the real value in the line, headers and body; the echo comes back as the placeholder', async () => {
    const { sb, events } = secretSandbox('SECRET API_KEY api.example.com\n')
    const placeholder = (await sb.exec('printenv API_KEY')).stdout.trim()
    const r = await sb.exec(curl(`-i "https://api.example.com/echo?k=$API_KEY" -H "Authorization: Bearer $API_KEY" --data "key=$API_KEY"`))
    expect(r.stderr).toBe('')
    const got = lastSeen(`/echo?k=${VALUE}`)!
    expect(got).toEqual({ tls: true, host: 'api.example.com', url: `/echo?k=${VALUE}`, authorization: `Bearer ${VALUE}`, body: `key=${VALUE}` })
    // The echo (a header and the body) holds the value: the sandbox sees its placeholder.
    expect(r.stdout).toContain(`x-echo: Bearer ${placeholder}`)
    expect(r.stdout).toContain(`auth=Bearer ${placeholder} body=key=${placeholder} url=/echo?k=${placeholder}`)
    expect(r.stdout).not.toContain(VALUE)
    expect(events).toEqual([])
  })

  test('the sandbox trusts its CA through the system bundle too, without the variables', async () => {
    const { sb } = secretSandbox('SECRET API_KEY api.example.com\n')
    // The hosts this suite runs on keep the Debian bundle; the Rust tests
    // cover the other layouts.
    expect(existsSync('/etc/ssl/certs/ca-certificates.crt')).toBe(true)
    const r = await sb.exec(`env -u CURL_CA_BUNDLE -u SSL_CERT_FILE ${curl('-H "Authorization: Bearer $API_KEY" https://api.example.com/system-bundle')}`)
    expect(r).toMatchObject({ exitCode: 0, stderr: '' })
    expect(lastSeen('/system-bundle')?.authorization).toBe(`Bearer ${VALUE}`)
  })

  test('the CA inside is only certificates: its private key never leaves the host process', async () => {
    const { sb } = secretSandbox('SECRET API_KEY api.example.com\n')
    const r = await sb.exec('ls /run/bun-sandbox; grep -l "PRIVATE KEY" /run/bun-sandbox/* /etc/ssl/certs/ca-certificates.crt; echo "grep: $?"')
    expect(r.stdout).toBe('ca-bundle.pem\nca.pem\ngrep: 1\n')
    // Nor is it in the state directory on the host.
    const state = spawnSync('grep', ['-rl', 'PRIVATE KEY', process.env.BUN_SANDBOX_STATE_DIR ?? `/tmp/bun-sandbox-${process.getuid!()}`])
    expect(state.stdout.toString()).toBe('')
  })

  test('a Host header naming another host does not move the value there', async () => {
    const { sb } = secretSandbox('SECRET API_KEY api.example.com\n')
    await sb.exec(curl('-H "Host: other.example.test" -H "Authorization: Bearer $API_KEY" https://api.example.com/host-header'))
    const got = lastSeen('/host-header')!
    // The request went to the host NET checked, under its own name.
    expect(got).toMatchObject({ host: 'api.example.com', authorization: `Bearer ${VALUE}` })
  })

  test('a secret scoped to one host is not sent to another allowed host, and that is reported', async () => {
    const { sb, events, dir } = secretSandbox('SECRET API_KEY api.example.com\n')
    const placeholder = (await sb.exec('printenv API_KEY')).stdout.trim()
    // other.example.test has no secret: its TLS is tunnelled untouched, so
    // the client verifies the upstream's own certificate (the test CA).
    writeFileSync(join(dir, 'test-ca.pem'), testCa)
    const r = await sb.exec(curl('--cacert test-ca.pem -H "Authorization: Bearer $API_KEY" https://other.example.test/scoped'))
    expect(r).toMatchObject({ exitCode: 0, stderr: '' })
    expect(lastSeen('/scoped')?.authorization).toBe(`Bearer ${placeholder}`)
    // Over plain http the proxy sees the placeholder going elsewhere and says so.
    await sb.exec(curl('-H "Authorization: Bearer $API_KEY" http://other.example.test/scoped-plain'))
    expect(lastSeen('/scoped-plain')?.authorization).toBe(`Bearer ${placeholder}`)
    expect(events).toEqual([
      expect.objectContaining({ kind: 'net', host: 'other.example.test', detail: expect.stringContaining('SECRET API_KEY') }),
    ])
  })

  test('a secret without hosts goes to every NET host, each under its own TLS', async () => {
    const { sb } = secretSandbox('SECRET API_KEY\n')
    const r = await sb.exec(curl('-H "Authorization: Bearer $API_KEY" https://other.example.test/unscoped'))
    expect(r).toMatchObject({ exitCode: 0, stderr: '' })
    expect(lastSeen('/unscoped')?.authorization).toBe(`Bearer ${VALUE}`)
  })

  test('plain http gets the placeholder and a report, unless network.allowPlaintextSecrets', async () => {
    const { sb, events } = secretSandbox('SECRET API_KEY api.example.com\n')
    const placeholder = (await sb.exec('printenv API_KEY')).stdout.trim()
    await sb.exec(curl('-H "Authorization: Bearer $API_KEY" http://api.example.com/plain'))
    expect(lastSeen('/plain')?.authorization).toBe(`Bearer ${placeholder}`)
    expect(events).toEqual([expect.objectContaining({ kind: 'net', host: 'api.example.com', detail: expect.stringMatching(/plain http/) })])

    const allowed = secretSandbox('SECRET API_KEY api.example.com\n', { network: { allowPlaintextSecrets: true } }).sb
    const r = await allowed.exec(curl('-H "Authorization: Bearer $API_KEY" http://api.example.com/plain-allowed'))
    expect(lastSeen('/plain-allowed')?.authorization).toBe(`Bearer ${VALUE}`)
    expect(r.stdout).not.toContain(VALUE)
  })

  test('a compressed answer to a request that carried a secret is withheld', async () => {
    const { sb } = secretSandbox('SECRET API_KEY api.example.com\n')
    const r = await sb.exec(curl('-i -H "Authorization: Bearer $API_KEY" https://api.example.com/compressed'))
    expect(r.stdout).toContain('502')
    expect(r.stdout).toContain('compressed')
    expect(r.stdout).not.toContain(VALUE)
  })

  test('two secrets with different scopes', async () => {
    const { sb } = secretSandbox('SECRET API_KEY api.example.com\nSECRET GH_TOKEN other.example.test\n')
    await sb.exec(curl('-H "Authorization: Bearer $GH_TOKEN" https://other.example.test/gh -H "X-Api: $API_KEY"'))
    expect(lastSeen('/gh')?.authorization).toBe(`Bearer ${OTHER_VALUE}`)
  })

  test('Bun fetch inside works through the proxy with the secret', async () => {
    // The bun running this suite, wherever it lives (its directory on PATH
    // is made visible inside).
    const env = { API_KEY: VALUE, PATH: `${dirname(process.execPath)}:${process.env.PATH}` }
    const { sb } = secretSandbox('SECRET API_KEY api.example.com\n', { env })
    const script = "const r = await fetch('https://api.example.com/bun-fetch', { headers: { authorization: 'Bearer ' + process.env.API_KEY } }); console.log(r.status, await r.text())"
    const r = await sb.exec([process.execPath, '-e', script])
    expect(r.stderr).toBe('')
    expect(r.stdout).toStartWith('200 auth=Bearer ')
    expect(lastSeen('/bun-fetch')?.authorization).toBe(`Bearer ${VALUE}`)
  })

  const nodeMajor = Number(spawnSync('node', ['-p', 'process.versions.node.split(".")[0]'], { encoding: 'utf8' }).stdout.trim())
  // NODE_USE_ENV_PROXY (which the sandbox sets) is honoured from Node 24 on.
  test.skipIf(!(nodeMajor >= 24))('Node fetch inside works through the env proxy with the secret', async () => {
    const { sb } = secretSandbox('SECRET API_KEY api.example.com\n')
    const script = "fetch('https://api.example.com/node-fetch', { headers: { authorization: 'Bearer ' + process.env.API_KEY } }).then(async (r) => console.log(r.status, await r.text()))"
    const r = await sb.exec(['node', '-e', script])
    expect(r.stdout).toStartWith('200 auth=Bearer ')
    expect(lastSeen('/node-fetch')?.authorization).toBe(`Bearer ${VALUE}`)
  })

  test('git clones over HTTPS with the token in a header', async () => {
    const repo = join(work, 'origin')
    if (!existsSync(repo)) {
      mkdirSync(repo)
      sh('git', ['init', '-q', '-b', 'main', repo])
      writeFileSync(join(repo, 'README'), 'hello from the origin\n')
      sh('git', ['-C', repo, '-c', 'user.name=t', '-c', 'user.email=t@example.com', 'add', 'README'])
      sh('git', ['-C', repo, '-c', 'user.name=t', '-c', 'user.email=t@example.com', 'commit', '-q', '-m', 'first'])
      sh('git', ['clone', '-q', '--bare', repo, join(work, 'repo.git')])
      sh('git', ['-C', join(work, 'repo.git'), 'update-server-info'])
    }
    // The dumb HTTP protocol: the bare repository's files, behind the token
    // (as a bearer token, or as the password of basic credentials).
    const bare = join(work, 'repo.git')
    const basic = 'Basic ' + Buffer.from(`x-access-token:${VALUE}`).toString('base64')
    for (const rel of sh('find', ['.', '-type', 'f'], bare).trim().split('\n')) {
      const path = `/repo.git/${rel.replace(/^\.\//, '')}`
      files.set(path, { body: readFileSync(join(bare, rel)), type: 'application/octet-stream', auth: [`Bearer ${VALUE}`, basic] })
    }
    const { sb } = secretSandbox('SECRET API_KEY api.example.com\n')
    const r = await sb.exec('git -c http.extraHeader="Authorization: Bearer $API_KEY" clone -q https://api.example.com/repo.git /tmp/clone && cat /tmp/clone/README')
    expect(r).toEqual({ exitCode: 0, stdout: 'hello from the origin\n', stderr: '' })
    const inUrl = await sb.exec('git clone -q "https://x-access-token:$API_KEY@api.example.com/repo.git" /tmp/clone2 && cat /tmp/clone2/README')
    expect(inUrl).toEqual({ exitCode: 0, stdout: 'hello from the origin\n', stderr: '' })
    const basics = seen.filter((s) => s.url.startsWith('/repo.git/') && s.authorization?.startsWith('Basic '))
    expect(basics.length).toBeGreaterThan(0)
    expect(basics.every((s) => s.authorization === basic)).toBe(true)
  })

  test('npm installs from a registry stand-in that wants the token', async () => {
    const pkgDir = join(work, 'pkg', 'package')
    mkdirSync(pkgDir, { recursive: true })
    writeFileSync(join(pkgDir, 'package.json'), JSON.stringify({ name: 'secret-pad', version: '1.0.0', main: 'index.js' }))
    writeFileSync(join(pkgDir, 'index.js'), 'module.exports = "padded"\n')
    sh('tar', ['czf', join(work, 'secret-pad-1.0.0.tgz'), '-C', join(work, 'pkg'), 'package'])
    const tarball = readFileSync(join(work, 'secret-pad-1.0.0.tgz'))
    const integrity = 'sha512-' + createHash('sha512').update(tarball).digest('base64')
    const auth = `Bearer ${VALUE}`
    files.set('/secret-pad', {
      type: 'application/json',
      auth: [auth],
      body: Buffer.from(JSON.stringify({
        name: 'secret-pad',
        'dist-tags': { latest: '1.0.0' },
        versions: { '1.0.0': { name: 'secret-pad', version: '1.0.0', dist: { tarball: 'https://api.example.com/secret-pad/-/secret-pad-1.0.0.tgz', integrity } } },
      })),
    })
    files.set('/secret-pad/-/secret-pad-1.0.0.tgz', { type: 'application/octet-stream', body: tarball, auth: [auth] })

    const { sb, dir } = secretSandbox('SECRET API_KEY api.example.com\n')
    writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'app', version: '1.0.0' }))
    writeFileSync(join(dir, '.npmrc'), 'registry=https://api.example.com/\n//api.example.com/:_authToken=${API_KEY}\n')
    const r = await sb.exec('npm install --no-audit --no-fund --cache /tmp/npm-cache secret-pad >/dev/null && node -p "require(\'secret-pad\')"')
    expect(r.stderr).not.toContain(VALUE)
    expect(r).toMatchObject({ exitCode: 0, stdout: 'padded\n' })
  })
})

describe('redaction', () => {
  test('secretMode "env": the value is inside, but every stream the agent reads shows [secret NAME]', async () => {
    const { sb } = secretSandbox('SECRET API_KEY\n', { secretMode: 'env' })
    // The value really is there (the comparison runs inside)...
    expect((await sb.exec(['sh', '-c', `test "$API_KEY" = "${VALUE}"`])).exitCode).toBe(0)
    // ...and nothing that reads it back shows it.
    const r = await sb.exec('echo "key: $API_KEY"; echo "err: $API_KEY" >&2')
    expect(r).toEqual({ exitCode: 0, stdout: 'key: [secret API_KEY]\n', stderr: 'err: [secret API_KEY]\n' })
  })

  test('callbacks, LOGS lines and extracted files are redacted, in chunks too', async () => {
    const out: string[] = []
    const lines: string[] = []
    const dir = project()
    const sbf = parseSandboxfile(
      `FROM host\nWORKDIR .\n${NET}SECRET API_KEY\nOUTPUT out/**\nLOGS logs/*.log\n` +
        // The value written one byte at a time: no chunk holds it whole.
        `RUN mkdir -p out logs && printf '%s\\n' "$API_KEY" | fold -w1 | while read -r c; do printf '%s' "$c"; done; echo; echo "$API_KEY" > out/key.txt\n`,
    )
    const sb = sandbox(sbf, {
      cwd: dir,
      env: { API_KEY: VALUE },
      secretMode: 'env',
      onStdout: (_n, data) => void out.push(data),
    })
    const stopTail = await sb.tailLogs((_file, line) => void lines.push(line))
    expect(await sb.runSetup()).toBe(true)
    await sb.exec('echo "token $API_KEY" >> logs/app.log')
    const dest = mkdtempSync(join(work, 'extract-'))
    expect(await sb.extractOutputs(dest)).toEqual(['out/key.txt'])
    expect(readFileSync(join(dest, 'out/key.txt'), 'utf8')).toBe('[secret API_KEY]\n')
    expect(out.join('')).toBe('[secret API_KEY]\n')
    await until(() => lines.length > 0, 'the LOGS line')
    expect(lines).toEqual(['token [secret API_KEY]'])
    stopTail()
  })

  test('output that could begin a value is held back only for a moment', async () => {
    const out: string[] = []
    const dir = project()
    // "ask" ends with "sk", how the value begins: it waits for more, then goes.
    const sb = sandbox(parseSandboxfile(`FROM host\nWORKDIR .\nSECRET API_KEY\nDEV printf 'ask'; sleep 30\n`), {
      cwd: dir,
      env: { API_KEY: VALUE },
      secretMode: 'env',
      onStdout: (_n, data) => void out.push(data),
    })
    await sb.startDev()
    await until(() => out.join('') === 'ask', 'the held-back output')
    expect(sb.getStatus().map((p) => p.name)).toEqual(['dev'])
  })
})

describe('network.extraCaCerts', () => {
  test('without secrets, programs inside trust it too (nothing is intercepted)', async () => {
    const dir = project()
    const sb = sandbox(parseSandboxfile(`FROM host\nWORKDIR .\n${NET}`), { cwd: dir, network: { resolve, extraCaCerts: testCa } })
    const r = await sb.exec(curl('https://api.example.com/extra-ca'))
    expect(r).toMatchObject({ exitCode: 0, stderr: '' })
    // And from a file path.
    writeFileSync(join(work, 'extra.pem'), testCa)
    const fromFile = sandbox(parseSandboxfile(`FROM host\nWORKDIR .\n${NET}`), { cwd: dir, network: { resolve, extraCaCerts: join(work, 'extra.pem') } })
    expect(await fromFile.exec(curl('https://api.example.com/extra-ca-file'))).toMatchObject({ exitCode: 0, stderr: '' })
    // Without it, the same request fails verification inside.
    const none = sandbox(parseSandboxfile(`FROM host\nWORKDIR .\n${NET}`), { cwd: dir, network: { resolve } })
    const refused = await none.exec(curl('https://api.example.com/no-extra-ca'))
    expect(refused.exitCode).toBe(60) // curl: peer certificate cannot be authenticated
  })

  test('the added roots can be read inside whatever the host umask (a root host user\'s sandbox user is another uid)', () => {
    const pem = join(work, 'umask.pem')
    writeFileSync(pem, testCa)
    const script = join(work, 'umask.js')
    writeFileSync(script, `const { Sandbox, parseSandboxfile } = require(${JSON.stringify(join(import.meta.dir, '..'))})
      const sb = new Sandbox(parseSandboxfile('FROM host\\nWORKDIR .\\n'), { cwd: ${JSON.stringify(project())}, network: { extraCaCerts: ${JSON.stringify(pem)} } })
      sb.exec('cat "$NODE_EXTRA_CA_CERTS"').then((r) => console.log(JSON.stringify(r)), (e) => console.log(e.message)).finally(() => sb.stop())`)
    const r = spawnSync('/bin/sh', ['-c', `umask 077 && exec "${process.execPath}" "${script}"`], { encoding: 'utf8' })
    expect(JSON.parse(r.stdout)).toEqual({ exitCode: 0, stdout: testCa.trimEnd() + '\n', stderr: '' })
  })
})

describe('bad input', () => {
  test('a missing secret is absent inside (a warning, not an error)', async () => {
    const { sb } = secretSandbox('SECRET NOT_SET_ANYWHERE_XYZ\n')
    const r = await sb.exec('printenv NOT_SET_ANYWHERE_XYZ')
    expect(r.exitCode).toBe(1)
  })

  test('a value too short for a placeholder is refused with the reason', async () => {
    const { sb } = secretSandbox('SECRET PIN\n', { env: { PIN: '1234' } })
    await expect(sb.exec('true')).rejects.toThrow('SECRET PIN is 4 bytes long; placeholders for values shorter than 8 bytes would be mistaken for ordinary text; use a longer value or secretMode: "env"')
    // loadSecrets() says so at once.
    expect(() => sb.loadSecrets()).toThrow(/SECRET PIN is 4 bytes long/)
  })

  test('extraCaCerts that is not PEM is refused when the sandbox starts', async () => {
    const bad = '-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n'
    const { sb } = secretSandbox('SECRET API_KEY\n', { network: { extraCaCerts: bad } })
    await expect(sb.exec('true')).rejects.toThrow(/extraCaCerts/)
    // Without secrets (nothing intercepted) as well.
    const plain = sandbox(parseSandboxfile(`FROM host\nWORKDIR .\n${NET}`), { cwd: project(), network: { resolve, extraCaCerts: bad } })
    await expect(plain.exec('true')).rejects.toThrow(/^the sandbox could not be built: network\.extraCaCerts is not valid PEM: /)
  })
})
