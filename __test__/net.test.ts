// SPEC §3 Network: egress only through the sandbox's proxy, which enforces NET.
import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { mkdtempSync } from 'node:fs'
import http from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Sandbox, parseSandboxfile } from '..'

let upstream: http.Server
let port = 0
const seen: string[] = []

beforeAll(async () => {
  upstream = http.createServer((req, res) => {
    seen.push(`${req.method} ${req.headers.host} ${req.url}`)
    res.end(`upstream ${req.url}`)
  })
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r))
  port = (upstream.address() as any).port
})
afterAll(() => upstream.close())

const project = () => mkdtempSync(join(tmpdir(), 'bun-sandbox-net-'))

function sandbox(net: string, events: any[] = []) {
  return new Sandbox(parseSandboxfile(`FROM host\nWORKDIR .\n${net}`), {
    cwd: project(),
    onViolation: (e) => events.push(e),
    network: { resolve: { 'api.example.com': `127.0.0.1:${port}`, 'other.example.test': `127.0.0.1:${port}` } },
  })
}

const curl = (...args: string[]) => ['curl', '-sS', '-m', '10', ...args]

describe('NET through the proxy', () => {
  test('an allowed host works over HTTP, CONNECT and SOCKS5', async () => {
    const sb = sandbox('NET api.example.com')
    expect(await sb.exec(curl('http://api.example.com/plain'))).toEqual({ exitCode: 0, stdout: 'upstream /plain', stderr: '' })
    expect(await sb.exec(curl('-p', 'http://api.example.com/tunnel'))).toEqual({ exitCode: 0, stdout: 'upstream /tunnel', stderr: '' })
    expect(await sb.exec(curl('-x', '', '--socks5-hostname', '127.0.0.1:' + (await proxyPort(sb)), 'http://api.example.com/socks')))
      .toEqual({ exitCode: 0, stdout: 'upstream /socks', stderr: '' })
    expect(seen).toContain('GET api.example.com /plain')
    await sb.stop()
  })

  test('a denied host gets 403 naming the NET line, and a violation', async () => {
    const events: any[] = []
    const sb = sandbox('NET api.example.com', events)
    const r = await sb.exec(curl('-i', 'http://other.example.test/x'))
    expect(r.stdout).toContain('403')
    expect(r.stdout).toContain('NET other.example.test')
    expect(events).toEqual([
      { kind: 'net', host: 'other.example.test', detail: 'other.example.test:80 is not allowed by the Sandboxfile; add "NET other.example.test" to allow it' },
    ])
    await sb.stop()
  })

  test('no NET: nothing leaves, and the refusal is reported', async () => {
    const events: any[] = []
    const sb = sandbox('', events)
    const r = await sb.exec(curl('-i', 'http://api.example.com/'))
    expect(r.stdout).toContain('403')
    expect(events.map((e) => e.host)).toEqual(['api.example.com'])
    await sb.stop()
  })

  test('a name resolving to loopback is refused unless network.resolve maps it', async () => {
    const events: any[] = []
    const sb = new Sandbox(parseSandboxfile('FROM host\nWORKDIR .\nNET localhost'), { cwd: project(), onViolation: (e) => events.push(e) })
    const r = await sb.exec(curl('-i', '--noproxy', '', `http://localhost:${port}/`))
    expect(r.stdout).toContain('403')
    expect(r.stdout).toMatch(/loopback/)
    expect(seen.filter((s) => s.startsWith('GET localhost'))).toEqual([])
    await sb.stop()
  })

  test('IP literals are refused unless NET lists them', async () => {
    const sb = sandbox('NET *')
    const r = await sb.exec(curl('-i', '--noproxy', '', 'http://192.0.2.1/'))
    expect(r.stdout).toContain('403')
    expect(r.stdout).toContain('NET 192.0.2.1')
    await sb.stop()
  })

  test('without the proxy there is no way out: a direct connection finds no network', async () => {
    const sb = sandbox('NET api.example.com')
    const r = await sb.exec(curl('--noproxy', '*', 'http://api.example.com/'))
    expect(r.exitCode).toBe(6) // could not resolve: there is no DNS inside
    const direct = await sb.exec(curl('--noproxy', '*', `http://192.0.2.1/`))
    expect(direct.stderr).toMatch(/Network is unreachable|Couldn't connect/)
    await sb.stop()
  })

  test('isNetworkAllowed agrees with the proxy', () => {
    const sb = sandbox('NET api.example.com')
    expect(sb.isNetworkAllowed('api.example.com')).toBe(true)
    expect(sb.isNetworkAllowed('other.example.test')).toBe(false)
  })
})

/** The proxy's port, as the sandbox's environment names it. */
async function proxyPort(sb: Sandbox): Promise<string> {
  const r = await sb.exec('echo $ALL_PROXY')
  return r.stdout.trim().split(':').pop()!
}
