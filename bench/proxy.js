#!/usr/bin/env node
// Egress proxy benchmark: traffic through a sandbox's proxy against the same
// traffic sent directly over the host's loopback, measured in the same run
// (interleaved) and reported as ratios. Runs under Node and Bun:
//
//   node bench/proxy.js
//   node_modules/.bin/bun bench/proxy.js
//
// An upstream server runs in a child process on the host (so the host
// process's RSS holds only the addon and its proxy): Node `http` serving
// /bytes/<n> from one reused 1 MiB buffer and /small (a 2-byte body), the
// same over Node `https` with a certificate for api.example.com from a test
// CA made here with the openssl command line, plus a raw TCP server that
// holds connections open. Three sandboxes (`FROM host`, `NET
// api.example.com`) reach it through `network.resolve`: one for plain http;
// one for HTTPS tunnelled untouched (`api.example.com:443` resolved to the
// TLS port, the test CA in `network.extraCaCerts`, no SECRET); and one for
// HTTPS the proxy intercepts (the same plus `SECRET API_KEY api.example.com`
// and a 32-byte value in `env`). Measures:
//
//   throughput  a --size download (default 1 GiB) with curl: directly on the
//               host to 127.0.0.1:<port>, and inside the sandbox through the
//               proxy as (a) a forward request (`-x http://proxy`), (b) a
//               CONNECT tunnel (`-x http://proxy -p`), (c) SOCKS5
//               (`-x socks5h://proxy`); then over HTTPS: (e) directly on the
//               host (`--cacert` the test CA, `--connect-to` the TLS port),
//               (f) through the proxy tunnelled untouched (curl inside
//               verifies the upstream with the sandbox's bundle), (g)
//               through the proxy with TLS interception (curl sends
//               `Authorization: Bearer $API_KEY`, the placeholder; the
//               upstream gets the value). MB/s from curl's size/time_total;
//               median of --runs, ratio to direct http for (a)-(c) and to
//               direct HTTPS for (f)-(g) (targets >= 0.5, and >= 0.25 for
//               (g)), and the CPU time of this process (the proxies'
//               threads) per GiB. Without curl on PATH (or with
//               --client=js), one small Node/Bun client (this file,
//               --role=client) does it both sides.
//   latency     --requests sequential GET /small per run, each on a new
//               connection (Connection: close), timed by one client process
//               from before connect() to the end of the response: direct on
//               the host, and inside through each proxy mode (CONNECT and
//               SOCKS5 include their handshakes); and the same over HTTPS,
//               the TLS handshake included: direct, tunnelled, intercepted
//               (and how many of the upstream's handshakes were resumed).
//               Median and p95, ratios.
//   memory      in a fresh host process per run (--role=memhost, its own
//               sandbox, `NET hold.example.com`): its RSS (VmRSS, what
//               process.memoryUsage().rss reports) and open fds before, and
//               while --connections CONNECT tunnels to the raw server are
//               held open by one client inside; delta in MiB and KiB per
//               connection. (In one process, memory freed by a run stays
//               with the allocator and hides the next run's cost.)
//
// Each mode is checked once before timing to have taken its route: curl -v
// shows the GET to the proxy, the CONNECT, the SOCKS5 handshake, and for
// HTTPS the issuer (the test CA directly and through the tunnel, the
// sandbox's CA when intercepted); the upstream counts, per /bytes download
// over TLS, an Authorization with the real value, with anything else, or none.
//
// No sleeps synchronise anything: the upstream reports over IPC when the
// client inside has opened every tunnel (the client says so through one
// more tunnel), and the client exits when the upstream closes them.
//
// Options: --runs=<n> (3), --size=<bytes> (1073741824), --requests=<n> (200
//          per mode per run), --connections=<n> (1000), --client=curl|js,
//          --json-only.
// Needs the built addon (`node scripts/build.js`, release) and `openssl`.
'use strict'

const net = require('node:net')

const args = Object.fromEntries(
  process.argv.slice(2).map((a) => {
    const [k, ...v] = a.replace(/^--/, '').split('=')
    return [k, v.length === 0 ? true : v.join('=')]
  }),
)
let interrupted = false
const nowNs = () => process.hrtime.bigint()
const msSince = (t0) => Number(process.hrtime.bigint() - t0) / 1e6

function splitAddr(s) {
  const i = s.lastIndexOf(':')
  return { host: s.slice(0, i).replace(/^\[|\]$/g, ''), port: Number(s.slice(i + 1)) }
}

// ================================================================ upstream
// Child process on the host. Talks to the parent over IPC.
function upstreamRole() {
  const http = require('node:http')
  const https = require('node:https')
  const fs = require('node:fs')
  const CHUNK = Buffer.alloc(1 << 20, 'x')
  // What reached the TLS server: per /bytes download, whether Authorization
  // held the real secret value, something else (a placeholder), or nothing;
  // and the Authorization of the last request for each /check/ path.
  const secret = process.env.BENCH_SECRET_VALUE
  const tlsBytes = { real: 0, other: 0, none: 0 }
  const checks = {}
  // TLS connections accepted, and how many of them resumed an earlier
  // session (null where the runtime cannot tell: Bun's TLSSocket has no
  // isSessionReused()).
  const handshakes = { total: 0, resumed: 0 }
  const onRequest = (tls) => (req, res) => {
    if (tls) {
      const auth = req.headers.authorization
      if (req.url.startsWith('/bytes/')) tlsBytes[auth == null ? 'none' : auth === `Bearer ${secret}` ? 'real' : 'other']++
      if (req.url.startsWith('/check/')) {
        checks[req.url] = auth ?? null
        req.url = '/small' // answered like /small
      }
    }
    const m = /^\/bytes\/(\d+)$/.exec(req.url)
    if (req.url === '/small') {
      res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': '2' })
      return res.end('ok')
    }
    if (!m) {
      res.writeHead(404, { 'Content-Length': '0' })
      return res.end()
    }
    let left = Number(m[1])
    res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': String(left) })
    const pump = () => {
      while (left > 0) {
        const n = Math.min(left, CHUNK.length)
        left -= n
        const ok = res.write(n === CHUNK.length ? CHUNK : CHUNK.subarray(0, n))
        if (!ok && left > 0) return res.once('drain', pump)
      }
      res.end()
    }
    res.on('error', () => {})
    pump()
  }
  const server = http.createServer(onRequest(false))
  server.keepAliveTimeout = 1000
  const tlsServer = https.createServer(
    { key: fs.readFileSync(args['tls-key']), cert: fs.readFileSync(args['tls-cert']) },
    onRequest(true),
  )
  tlsServer.keepAliveTimeout = 1000
  tlsServer.on('secureConnection', (s) => {
    handshakes.total++
    if (typeof s.isSessionReused !== 'function') handshakes.resumed = null
    else if (handshakes.resumed != null && s.isSessionReused()) handshakes.resumed++
  })

  // Holds every connection; a line "ready <ok> <failed>" on one of them is
  // the client inside saying it has opened all of its tunnels.
  const held = new Set()
  const hold = net.createServer((sock) => {
    held.add(sock)
    sock.on('error', () => {})
    sock.on('close', () => held.delete(sock))
    let line = ''
    sock.on('data', (d) => {
      line += d.toString('latin1')
      const m = /ready (\d+) (\d+)\n/.exec(line)
      if (m) process.send({ type: 'ready', ok: Number(m[1]), failed: Number(m[2]), held: held.size })
    })
    sock.write('+')
  })
  hold.maxConnections = 1e6

  process.on('message', (msg) => {
    if (msg.type === 'release') {
      const n = held.size
      for (const s of held) s.destroy()
      process.send({ type: 'released', n })
    } else if (msg.type === 'seen') {
      process.send({ type: 'seen', tlsBytes: { ...tlsBytes }, checks: { ...checks }, handshakes: { ...handshakes } })
    } else if (msg.type === 'exit') {
      process.exit(0)
    }
  })
  process.on('disconnect', () => process.exit(0))
  let listening = 0
  const up = () => {
    if (++listening === 3) {
      process.send({ type: 'listening', http: server.address().port, https: tlsServer.address().port, hold: hold.address().port })
    }
  }
  server.listen(0, '127.0.0.1', up)
  tlsServer.listen(0, '127.0.0.1', up)
  hold.listen({ port: 0, host: '127.0.0.1', backlog: 4096 }, up)
}

// ================================================================== client
// Runs on the host (direct) and inside the sandbox (through the proxy): the
// same code both sides.
//
// One request on a new connection. mode: direct | forward | connect | socks.
// With o.tls (direct or connect), TLS to o.host (o.secureContext) over
// that connection or tunnel; o.auth, an Authorization header to send.
// Resolves { ms, connectMs, tlsMs, firstByteMs, bytes } once the body is
// complete (connectMs: TCP connected; tlsMs: TLS handshake done, any tunnel
// before it included).
function request(o) {
  return new Promise((resolve, reject) => {
    const t0 = nowNs()
    const to = splitAddr(o.mode === 'direct' ? o.target : o.proxy)
    const raw = net.connect({ host: to.host, port: to.port })
    raw.setNoDelay(true)
    let sock = raw // what the HTTP exchange goes over: raw, or TLS on it
    const authority = `${o.host}:${o.port}`
    const get = Buffer.from(
      `GET ${o.mode === 'forward' ? `http://${authority}${o.path}` : o.path} HTTP/1.1\r\n` +
        `Host: ${authority}\r\n${o.auth ? `Authorization: ${o.auth}\r\n` : ''}Connection: close\r\n\r\n`,
    )
    let stage = 'connecting'
    let buf = Buffer.alloc(0)
    let connectMs = 0
    let tlsMs = 0
    let firstByteMs = 0
    let length = -1
    let body = 0
    let done = false
    const fail = (why) => {
      if (done) return
      done = true
      sock.destroy()
      raw.destroy()
      reject(new Error(`${o.mode}${o.tls ? ' tls' : ''} ${o.path}: ${why}`))
    }
    const finish = () => {
      if (done) return
      done = true
      sock.destroy()
      raw.destroy()
      resolve({ ms: msSince(t0), connectMs, tlsMs, firstByteMs, bytes: body })
    }
    const onClose = () => {
      if (stage === 'body' && length < 0) finish()
      else fail(`connection closed in stage ${stage} (${body}/${length} body bytes)`)
    }
    // The connection (or tunnel) is up: the request, over TLS if asked.
    const sendGet = () => {
      stage = 'head'
      if (!o.tls) return sock.write(get)
      if (buf.length) return fail(`${buf.length} unexpected bytes before the TLS handshake`)
      raw.off('data', onData)
      raw.off('close', onClose)
      sock = require('node:tls').connect({ socket: raw, servername: o.host, secureContext: o.secureContext, ALPNProtocols: ['http/1.1'] })
      sock.on('secureConnect', () => {
        tlsMs = msSince(t0)
        sock.write(get)
      })
      sock.on('data', onData)
      sock.on('error', (e) => fail(e.message))
      sock.on('close', onClose)
    }
    raw.on('connect', () => {
      connectMs = msSince(t0)
      if (o.mode === 'socks') {
        stage = 'socks-method'
        raw.write(Buffer.from([5, 1, 0]))
      } else if (o.mode === 'connect') {
        stage = 'connect'
        raw.write(`CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\n\r\n`)
      } else {
        sendGet()
      }
    })
    const onData = (d) => {
      if (stage === 'body') {
        body += d.length
        if (length >= 0 && body >= length) finish()
        return
      }
      buf = buf.length ? Buffer.concat([buf, d]) : d
      for (;;) {
        if (stage === 'socks-method') {
          if (buf.length < 2) return
          if (buf[0] !== 5 || buf[1] !== 0) return fail(`SOCKS5 method reply ${buf.subarray(0, 2).toString('hex')}`)
          buf = buf.subarray(2)
          const name = Buffer.from(o.host)
          const port = Buffer.from([o.port >> 8, o.port & 255])
          raw.write(Buffer.concat([Buffer.from([5, 1, 0, 3, name.length]), name, port]))
          stage = 'socks-reply'
        } else if (stage === 'socks-reply') {
          if (buf.length < 5) return
          if (buf[1] !== 0) return fail(`SOCKS5 reply code ${buf[1]}`)
          const alen = buf[3] === 1 ? 4 : buf[3] === 4 ? 16 : 1 + buf[4]
          if (buf.length < 4 + alen + 2) return
          buf = buf.subarray(4 + alen + 2)
          return sendGet()
        } else if (stage === 'connect') {
          const end = buf.indexOf('\r\n\r\n')
          if (end < 0) return
          const status = buf.subarray(0, buf.indexOf('\r\n')).toString('latin1')
          if (!/^HTTP\/1\.[01] 200/.test(status)) return fail(`CONNECT answered "${status}"`)
          buf = buf.subarray(end + 4)
          return sendGet()
        } else if (stage === 'head') {
          if (!firstByteMs && buf.length) firstByteMs = msSince(t0)
          const end = buf.indexOf('\r\n\r\n')
          if (end < 0) return
          const head = buf.subarray(0, end).toString('latin1')
          if (!/^HTTP\/1\.[01] 200/.test(head)) return fail(`answered "${head.split('\r\n')[0]}"`)
          const m = /\r\ncontent-length:\s*(\d+)/i.exec(head)
          length = m ? Number(m[1]) : -1
          body = buf.length - (end + 4)
          buf = Buffer.alloc(0)
          stage = 'body'
          if (length >= 0 && body >= length) finish()
          return
        } else {
          return
        }
      }
    }
    raw.on('data', onData)
    raw.on('error', (e) => fail(e.message))
    raw.on('close', onClose)
  })
}

// Opens `n` CONNECT tunnels to o.host:o.port (the raw hold server), waits for
// its '+' on each, says "ready <ok> <failed>" on one more tunnel, then stays
// until the server closes them all.
async function hold(o, n) {
  const open = () =>
    new Promise((resolve, reject) => {
      const to = splitAddr(o.proxy)
      const sock = net.connect({ host: to.host, port: to.port })
      let buf = ''
      const onData = (d) => {
        buf += d.toString('latin1')
        const end = buf.indexOf('\r\n\r\n')
        if (end < 0) return
        if (!/^HTTP\/1\.[01] 200/.test(buf)) {
          sock.destroy()
          const why = buf.slice(end + 4, end + 4 + 300).trim()
          return reject(new Error(`CONNECT answered "${buf.split('\r\n')[0]}"${why ? `: ${why}` : ''}`))
        }
        if (buf.length > end + 4) {
          sock.off('data', onData) // 'error' stays handled: reject is a no-op now
          resolve(sock)
        }
      }
      sock.on('data', onData)
      sock.on('error', reject)
      sock.on('connect', () => sock.write(`CONNECT ${o.host}:${o.port} HTTP/1.1\r\nHost: ${o.host}:${o.port}\r\n\r\n`))
      // A proxy out of descriptors leaves connections in its backlog: give up
      // on one after 5 s rather than hang.
      sock.setTimeout(5000, () => {
        sock.destroy()
        reject(Object.assign(new Error('no answer from the proxy in 5 s (out of file descriptors?)'), { timedOut: true }))
      })
    })
  const socks = []
  const errors = new Map()
  let next = 0
  const worker = async () => {
    while (next < n) {
      next++
      try {
        const sock = await open()
        sock.setTimeout(0)
        socks.push(sock)
      } catch (e) {
        errors.set(e.message, (errors.get(e.message) ?? 0) + 1)
        if (e.timedOut) next = n // stuck: stop opening more, report what was held
      }
    }
  }
  // The control tunnel first, so that it exists even when the others fail.
  const control = await open()
  control.setTimeout(0)
  const t0 = nowNs()
  await Promise.all(Array.from({ length: 32 }, worker))
  const openMs = msSince(t0)
  // Every tunnel, the control one too, until the server closes them.
  const all = [...socks, control]
  const allClosed = Promise.all(
    all.map(
      (s) =>
        new Promise((resolve) => {
          s.on('error', () => {})
          if (s.destroyed) resolve()
          else s.once('close', resolve)
        }),
    ),
  )
  control.write(`ready ${socks.length} ${n - socks.length}\n`)
  await allClosed
  return { ok: socks.length, failed: n - socks.length, errors: Object.fromEntries(errors), openMs }
}

async function clientRole() {
  const o = {
    mode: args.mode,
    proxy: args.proxy,
    target: args.target,
    host: args.host,
    port: Number(args.port ?? 80),
    path: args.path ?? '/small',
    tls: !!args.tls,
    // One context for every connection: made per connect() (from `ca`), it
    // costs OpenSSL 3 milliseconds each time, which no proxy adds.
    secureContext: args.tls ? require('node:tls').createSecureContext({ ca: args.ca ? require('node:fs').readFileSync(args.ca) : undefined }) : undefined,
    // The header carries the variable's value as the client sees it: inside
    // a sandbox with the SECRET, the placeholder.
    auth: args['auth-env'] ? `Bearer ${process.env[args['auth-env']]}` : undefined,
  }
  let out
  if (args.task === 'latency') {
    const n = Number(args.n ?? 200)
    const warm = Number(args.warmup ?? 10)
    for (let i = 0; i < warm; i++) await request(o)
    const ms = []
    const connectMs = []
    const tlsMs = []
    const firstByteMs = []
    for (let i = 0; i < n; i++) {
      const r = await request(o)
      if (r.bytes !== 2) throw new Error(`latency: got ${r.bytes} body bytes, want 2`)
      ms.push(r.ms)
      connectMs.push(r.connectMs)
      tlsMs.push(r.tlsMs)
      firstByteMs.push(r.firstByteMs)
    }
    out = { ms, connectMs, tlsMs, firstByteMs }
  } else if (args.task === 'download') {
    const r = await request(o)
    out = { bytes: r.bytes, ms: r.ms }
  } else if (args.task === 'hold') {
    out = await hold(o, Number(args.n ?? 1000))
  } else {
    throw new Error(`unknown client task ${args.task}`)
  }
  process.stdout.write(JSON.stringify(out) + '\n')
}


// ================================================================= memhost
// A fresh host process per memory run, so that no run inherits memory the
// allocator kept from an earlier one: one sandbox whose proxy carries the
// tunnels. The parent reads this process's RSS and fds from /proc and drives
// it over IPC.
async function memhostRole() {
  const { Sandbox, parseSandboxfile } = require('..')
  const sb = new Sandbox(parseSandboxfile('FROM host\nWORKDIR .\nNET hold.example.com\n'), {
    cwd: args.cwd,
    network: { resolve: { 'hold.example.com': `127.0.0.1:${args['hold-port']}` } },
  })
  const stop = () => sb.stop().finally(() => process.exit(0))
  process.on('disconnect', stop)
  const probe = await sb.exec(['sh', '-c', 'printf "%s\\n%s\\n%s\\n" "$HTTP_PROXY" "$(ulimit -n)" "$(ulimit -Hn)"'])
  if (probe.exitCode !== 0) throw new Error(`probe inside failed: ${probe.stderr}`)
  const [httpProxy, nofile, hardText] = probe.stdout.trim().split('\n')
  const hard = hardText === 'unlimited' ? Infinity : Number(hardText)
  const proxy = httpProxy.replace(/^http:\/\//, '').replace(/\/$/, '')
  process.on('message', async (msg) => {
    if (msg.type === 'hold') {
      let argv = [process.execPath, args['client-js'], '--role=client', '--task=hold', `--n=${msg.n}`,
        `--proxy=${proxy}`, '--host=hold.example.com', '--port=80']
      // Enough descriptors for the client inside, if the default is too low
      // (up to the hard limit: past it, the client reports EMFILE).
      const need = msg.n + 64
      const raisedTo = Number(nofile) < need ? Math.min(need, hard) : null
      if (raisedTo) argv = ['sh', '-c', `ulimit -n ${raisedTo} && exec "$@"`, 'sh', ...argv]
      const r = await sb.exec(argv, { timeoutMs: 300000 })
      process.send({ type: 'held', raisedTo, exitCode: r.exitCode, stdout: r.stdout, stderr: r.stderr })
    } else if (msg.type === 'stop') {
      stop()
    }
  })
  process.send({ type: 'started', proxy, insideNofile: Number(nofile) })
}

if (args.role === 'upstream') {
  upstreamRole()
} else if (args.role === 'memhost') {
  memhostRole().catch((e) => {
    console.error(e)
    process.exit(1)
  })
} else if (args.role === 'client') {
  clientRole().then(
    () => process.exit(0),
    (e) => {
      console.error(e.message)
      process.exit(1)
    },
  )
} else {
  main().then(
    (code) => process.exit(code ?? 0),
    (e) => {
      if (interrupted) return // the signal handler cleans up and exits
      console.error(e)
      process.exit(1)
    },
  )
}

// ==================================================================== main
async function main() {
  const { spawn, spawnSync, fork } = require('node:child_process')
  const fs = require('node:fs')
  const os = require('node:os')
  const path = require('node:path')

  // NODE_EXTRA_CA_CERTS slows every Node start; keep it out of all children.
  delete process.env.NODE_EXTRA_CA_CERTS
  // Direct traffic must not find a proxy in the environment.
  const hostEnv = { ...process.env }
  for (const k of Object.keys(hostEnv)) if (/^(https?|all|no)_proxy$/i.test(k)) delete hostEnv[k]

  const { Sandbox, parseSandboxfile } = require('..')

  const RUNS = Number(args.runs ?? 3)
  const SIZE = Number(args.size ?? 2 ** 30)
  const REQUESTS = Number(args.requests ?? 200)
  const CONNECTIONS = Number(args.connections ?? 1000)
  const JSON_ONLY = !!args['json-only']
  const runtime = typeof Bun !== 'undefined' ? `bun ${Bun.version}` : `node ${process.version}`
  const log = (...a) => {
    if (!JSON_ONLY) console.error(...a)
  }
  const haveCurl = (() => {
    const r = spawnSync('curl', ['--version'], { env: hostEnv })
    return !r.error && r.status === 0 ? String(r.stdout).split('\n')[0] : null
  })()
  const CLIENT = args.client ?? (haveCurl ? 'curl' : 'js')
  if (CLIENT === 'curl' && !haveCurl) throw new Error('--client=curl but curl is not on PATH')
  if (!['curl', 'js'].includes(CLIENT)) throw new Error('--client must be curl or js')

  function stats(xs) {
    const s = [...xs].sort((a, b) => a - b)
    const q = (p) => s[Math.min(s.length - 1, Math.max(0, Math.ceil(p * s.length) - 1))]
    return { median: q(0.5), p95: q(0.95), min: s[0], max: s[s.length - 1], n: s.length }
  }
  const loadavg = () => os.loadavg().map((x) => +x.toFixed(2))
  const load = { start: loadavg() }
  // Which build of the addon this measured (its file's modification time).
  const addonBuilt = (() => {
    const root = path.join(__dirname, '..')
    const file = fs.readdirSync(root).find((f) => f.endsWith('.node'))
    return file ? fs.statSync(path.join(root, file)).mtime.toISOString() : null
  })()

  const projectDir = fs.mkdtempSync(path.join(os.tmpdir(), 'bsb-proxy-'))
  // The client, as a file both sides run (the sandbox sees the project dir).
  const clientJs = path.join(projectDir, 'proxy-client.js')
  fs.copyFileSync(__filename, clientJs)
  const runtimeBin = process.execPath

  // The SECRET of the intercepting sandbox: 32 bytes, so its placeholder is too.
  const SECRET_VALUE = 'sk-bench-4f9c2a7e1b8d3065c9e2a7f'
  if (SECRET_VALUE.length !== 32) throw new Error('SECRET_VALUE must be 32 bytes')
  // Host-side clients send the value itself where the sandbox sends the placeholder.
  const hostClientEnv = { ...hostEnv, API_KEY: SECRET_VALUE }

  let upstream = null
  const sandboxes = new Set()
  const memhosts = new Set()
  const cleanup = async () => {
    for (const mh of memhosts) mh.kill('SIGKILL')
    for (const sb of sandboxes) await sb.stop().catch(() => {})
    sandboxes.clear()
    if (upstream && upstream.exitCode === null) {
      upstream.kill('SIGKILL')
    }
    upstream = null
    fs.rmSync(projectDir, { recursive: true, force: true })
  }
  const onSignal = (sig) => {
    interrupted = true
    log(`${sig}: stopping the sandboxes and the upstream server`)
    cleanup().finally(() => process.exit(sig === 'SIGINT' ? 130 : 143))
  }
  process.once('SIGINT', onSignal)
  process.once('SIGTERM', onSignal)

  try {
    // A test CA and a certificate for api.example.com, with the openssl
    // command line (as __test__/secrets.test.ts makes them).
    const tlsDir = path.join(projectDir, 'tls')
    fs.mkdirSync(tlsDir)
    const openssl = (argv) => {
      const r = spawnSync('openssl', argv, { cwd: tlsDir, env: hostEnv, encoding: 'utf8' })
      if (r.error || r.status !== 0) throw new Error(`openssl ${argv.join(' ')} failed: ${r.stderr || r.error}`)
    }
    const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes']
    openssl(['req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=bun-sandbox test CA',
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'])
    openssl(['req', ...ec, '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=api.example.com'])
    fs.writeFileSync(path.join(tlsDir, 'server.ext'), 'subjectAltName=DNS:api.example.com\nextendedKeyUsage=serverAuth\n')
    openssl(['x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '2',
      '-out', 'server.pem', '-extfile', 'server.ext'])
    const testCaFile = path.join(tlsDir, 'ca.pem')
    const testCaPem = fs.readFileSync(testCaFile, 'utf8')

    // ------------------------------------------------------------ upstream
    upstream = fork(__filename, ['--role=upstream', `--tls-key=${path.join(tlsDir, 'server.key')}`, `--tls-cert=${path.join(tlsDir, 'server.pem')}`], {
      env: { ...hostEnv, BENCH_SECRET_VALUE: SECRET_VALUE },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    })
    // The next IPC message of `type` from `child`, or a rejection once it exits.
    const gone = (child, what) => {
      const p = new Promise((_, reject) => {
        const fail = (code, signal) => reject(new Error(`${what} exited (${code ?? signal})`))
        if (child.exitCode !== null || child.signalCode !== null) fail(child.exitCode, child.signalCode)
        else child.once('exit', fail)
      })
      p.catch(() => {})
      return p
    }
    const nextMessage = (child, type, childGone) =>
      Promise.race([
        new Promise((resolve) => {
          const on = (msg) => {
            if (msg && msg.type === type) {
              child.off('message', on)
              resolve(msg)
            }
          }
          child.on('message', on)
        }),
        childGone,
      ])
    const upstreamGone = gone(upstream, 'the upstream server')
    const ports = await nextMessage(upstream, 'listening', upstreamGone)

    // ----------------------------------------------------------- sandboxes
    // plain: http to the plain port. tunnel: HTTPS, no SECRET, so the proxy
    // tunnels it untouched and curl inside verifies the test CA (from
    // extraCaCerts, in the sandbox's bundle). intercept: the same plus a
    // SECRET for api.example.com, so the proxy terminates TLS with the
    // sandbox's CA and talks TLS to the upstream (verified with extraCaCerts).
    const NET = 'FROM host\nWORKDIR .\nNET api.example.com\n'
    const tlsNetwork = { resolve: { 'api.example.com:443': `127.0.0.1:${ports.https}` }, extraCaCerts: testCaPem }
    const make = (text, options) => {
      const sb = new Sandbox(parseSandboxfile(text), { cwd: projectDir, ...options })
      sandboxes.add(sb)
      return sb
    }
    const sbs = {
      plain: make(NET, { network: { resolve: { 'api.example.com': `127.0.0.1:${ports.http}` } } }),
      tunnel: make(NET, { network: tlsNetwork }),
      intercept: make(`${NET}SECRET API_KEY api.example.com\n`, { network: tlsNetwork, env: { API_KEY: SECRET_VALUE } }),
    }
    const inside = async (sb, argv, what) => {
      const r = await sb.exec(argv, { timeoutMs: 300000 })
      if (r.exitCode !== 0) throw new Error(`${what} inside failed (exit ${r.exitCode}): ${r.stderr.trim() || r.stdout.trim()}`)
      return r
    }
    // Each sandbox's proxy address, and the file Node inside trusts (its CA
    // and extraCaCerts) for the latency client.
    const proxyOf = {}
    const caInside = {}
    let placeholder = null
    for (const [name, sb] of Object.entries(sbs)) {
      const probe = await inside(sb, ['sh', '-c', 'printf "%s\\n%s\\n%s\\n" "$HTTP_PROXY" "$NODE_EXTRA_CA_CERTS" "$API_KEY"'], `probe (${name})`)
      const [httpProxy, nodeCa, apiKey] = probe.stdout.split('\n')
      const addr = httpProxy.replace(/^http:\/\//, '').replace(/\/$/, '')
      if (!/^127\.0\.0\.1:\d+$/.test(addr)) throw new Error(`unexpected HTTP_PROXY inside (${name}): ${JSON.stringify(httpProxy)}`)
      proxyOf[name] = addr
      caInside[name] = nodeCa
      if (name === 'intercept') placeholder = apiKey
    }
    if (!placeholder || placeholder.length !== SECRET_VALUE.length || placeholder === SECRET_VALUE) {
      throw new Error(`API_KEY inside the intercepting sandbox is not a placeholder of the value's length: ${JSON.stringify(placeholder)}`)
    }
    const proxyAddr = proxyOf.plain

    const host = (argv) =>
      new Promise((resolve, reject) => {
        const child = spawn(argv[0], argv.slice(1), { env: hostClientEnv, stdio: ['ignore', 'pipe', 'pipe'] })
        let stdout = ''
        let stderr = ''
        child.stdout.on('data', (d) => (stdout += d))
        child.stderr.on('data', (d) => (stderr += d))
        child.once('error', reject)
        child.once('close', (code) => resolve({ exitCode: code, stdout, stderr }))
      })
    const onHost = async (argv, what) => {
      const r = await Promise.race([host(argv), upstreamGone])
      if (r.exitCode !== 0) throw new Error(`${what} on the host failed (exit ${r.exitCode}): ${r.stderr.trim()}`)
      return r
    }
    // Every mode: where its client runs (a sandbox, or the host), what its
    // ratio compares it with, and the target from the issue.
    const MODE = {
      direct: { label: 'direct (host)' },
      forward: { sb: 'plain', ref: 'direct', target: 0.5, label: 'forward proxy' },
      connect: { sb: 'plain', ref: 'direct', target: 0.5, label: 'CONNECT' },
      socks: { sb: 'plain', ref: 'direct', target: 0.5, label: 'SOCKS5' },
      'https-direct': { tls: true, label: 'HTTPS direct (host)' },
      'https-tunnel': { tls: true, sb: 'tunnel', ref: 'https-direct', target: 0.5, label: 'HTTPS tunnelled' },
      'https-intercept': { tls: true, sb: 'intercept', ref: 'https-direct', target: 0.25, label: 'HTTPS intercepted' },
    }
    const MODES = Object.keys(MODE)
    const run = (mode, argv, what) => (MODE[mode].sb ? inside(sbs[MODE[mode].sb], argv, what) : onHost(argv, what))

    const clientArgs = (mode, extra) => {
      const common = [runtimeBin, clientJs, '--role=client']
      switch (mode) {
        case 'https-direct':
          return [...common, '--mode=direct', '--tls', `--target=127.0.0.1:${ports.https}`, '--host=api.example.com', '--port=443',
            `--ca=${testCaFile}`, '--auth-env=API_KEY', ...extra]
        case 'https-tunnel':
        case 'https-intercept': {
          const name = MODE[mode].sb
          return [...common, '--mode=connect', '--tls', `--proxy=${proxyOf[name]}`, '--host=api.example.com', '--port=443',
            `--ca=${caInside[name]}`, ...(name === 'intercept' ? ['--auth-env=API_KEY'] : []), ...extra]
        }
        default:
          return [...common, `--mode=${mode}`, `--proxy=${proxyAddr}`, `--target=127.0.0.1:${ports.http}`,
            `--host=${mode === 'direct' ? '127.0.0.1' : 'api.example.com'}`, `--port=${mode === 'direct' ? ports.http : 80}`, ...extra]
      }
    }
    // The Authorization header from $API_KEY as the shell there sees it: the
    // value on the host, the placeholder in the intercepting sandbox.
    const withAuth = (argv) => ['sh', '-c', 'exec "$@" -H "Authorization: Bearer $API_KEY"', 'sh', ...argv]
    const curlArgs = (mode, urlPath, extra = []) => {
      const url = mode === 'direct' ? `http://127.0.0.1:${ports.http}${urlPath}` : MODE[mode].tls ? `https://api.example.com${urlPath}` : `http://api.example.com${urlPath}`
      const via = {
        direct: ['--noproxy', '*'],
        forward: ['-x', `http://${proxyAddr}`],
        connect: ['-x', `http://${proxyAddr}`, '-p'],
        socks: ['-x', `socks5h://${proxyAddr}`],
        'https-direct': ['--noproxy', '*', '--cacert', testCaFile, '--connect-to', `api.example.com:443:127.0.0.1:${ports.https}`],
        // HTTPS through an http proxy is a CONNECT; curl inside verifies
        // with the sandbox's bundle (CURL_CA_BUNDLE).
        'https-tunnel': ['-x', `http://${proxyOf.tunnel}`],
        'https-intercept': ['-x', `http://${proxyOf.intercept}`],
      }[mode]
      const argv = ['curl', '-sS', '--fail', ...via, ...extra, url]
      return mode === 'https-direct' || mode === 'https-intercept' ? withAuth(argv) : argv
    }
    const seen = async () => {
      const r = nextMessage(upstream, 'seen', upstreamGone)
      upstream.send({ type: 'seen' })
      return r
    }

    // -------------------------------------------------------- 1. throughput
    // MB/s, and the CPU time this process (all its threads: the proxies run
    // on the addon's tokio threads, JavaScript only waits) spent meanwhile.
    const download = async (mode, size) => {
      const cpu0 = process.cpuUsage()
      let seconds
      if (CLIENT === 'curl') {
        const argv = curlArgs(mode, `/bytes/${size}`, ['-o', '/dev/null', '-w', '%{size_download} %{time_total}'])
        const r = await run(mode, argv, `curl ${mode}`)
        const [bytes, secs] = r.stdout.trim().split(/\s+/).map(Number)
        if (bytes !== size) throw new Error(`curl ${mode}: ${bytes} bytes, want ${size}`)
        seconds = secs
      } else {
        const r = await run(mode, clientArgs(mode, ['--task=download', `--path=/bytes/${size}`]), `client ${mode}`)
        const { bytes, ms } = JSON.parse(r.stdout)
        if (bytes !== size) throw new Error(`client ${mode}: ${bytes} bytes, want ${size}`)
        seconds = ms / 1000
      }
      const cpu = process.cpuUsage(cpu0)
      return { mbps: size / 1e6 / seconds, cpuSecPerGiB: (cpu.user + cpu.system) / 1e6 / (size / 2 ** 30) }
    }
    // Make sure each mode really took its route (with curl -v, whichever
    // client times it): the request to the proxy, and over HTTPS whose
    // certificate curl verified and what Authorization the upstream got.
    const routes = {}
    if (haveCurl) {
      const issuer = (cn) => new RegExp(`issuer: .*CN ?= ?${cn}`)
      const expect = {
        forward: [/> GET http:\/\/api\.example\.com\/small/],
        connect: [/CONNECT api\.example\.com:80/],
        socks: [/SOCKS5/i],
        'https-direct': [issuer('bun-sandbox test CA')],
        'https-tunnel': [/CONNECT api\.example\.com:443/, issuer('bun-sandbox test CA')],
        'https-intercept': [/CONNECT api\.example\.com:443/, issuer('bun-sandbox sandbox CA')],
      }
      for (const mode of Object.keys(expect)) {
        const urlPath = MODE[mode].tls ? `/check/${mode}` : '/small'
        const r = await run(mode, curlArgs(mode, urlPath, ['-v', '-o', '/dev/null']), `curl -v ${mode}`)
        for (const re of expect[mode]) {
          if (!re.test(r.stderr)) throw new Error(`curl ${mode} did not take its route (no ${re} in its -v output):\n${r.stderr}`)
        }
        if (MODE[mode].tls) routes[mode] = { issuer: /issuer: (.*)/.exec(r.stderr)[1].trim() }
      }
      // The upstream got the value from the host and (injected) from the
      // intercepting sandbox, and no header through the untouched tunnel.
      const { checks } = await seen()
      const want = { 'https-direct': `Bearer ${SECRET_VALUE}`, 'https-tunnel': null, 'https-intercept': `Bearer ${SECRET_VALUE}` }
      for (const [mode, auth] of Object.entries(want)) {
        const got = checks[`/check/${mode}`]
        if (got !== auth) throw new Error(`${mode}: the upstream got Authorization ${JSON.stringify(got)}, want ${JSON.stringify(auth)}`)
        routes[mode].upstreamAuthorization = got == null ? null : got === `Bearer ${SECRET_VALUE}` ? 'the value' : 'something else'
      }
    }
    const throughput = Object.fromEntries(MODES.map((m) => [m, []]))
    const hostCpu = Object.fromEntries(MODES.map((m) => [m, []]))
    let tlsDownloads
    {
      const warm = Math.min(SIZE, 64 * 2 ** 20)
      for (const mode of MODES) await download(mode, warm)
      const before = (await seen()).tlsBytes
      for (let i = 0; i < RUNS; i++) {
        // Rotate the order so no mode always follows the same one.
        const order = MODES.map((_, k) => MODES[(k + i) % MODES.length])
        for (const mode of order) {
          const d = await download(mode, SIZE)
          throughput[mode].push(d.mbps)
          hostCpu[mode].push(d.cpuSecPerGiB)
        }
        log(`throughput run ${i + 1}/${RUNS} MB/s: ${MODES.map((m) => `${m} ${throughput[m].at(-1).toFixed(0)}`).join(', ')}`)
      }
      // Every timed HTTPS download: the value from the host and the
      // intercepting sandbox, nothing through the tunnel, never a placeholder.
      const after = (await seen()).tlsBytes
      tlsDownloads = Object.fromEntries(Object.keys(after).map((k) => [k, after[k] - before[k]]))
      const want = { real: 2 * RUNS, other: 0, none: RUNS }
      if (Object.keys(want).some((k) => tlsDownloads[k] !== want[k])) {
        throw new Error(`the HTTPS upstream saw Authorization ${JSON.stringify(tlsDownloads)} over the timed downloads, want ${JSON.stringify(want)}`)
      }
    }

    // ----------------------------------------------------------- 2. latency
    const latency = Object.fromEntries(MODES.map((m) => [m, { ms: [], connectMs: [], tlsMs: [], firstByteMs: [] }]))
    // The upstream's TLS handshakes per HTTPS mode (warm-ups included), and
    // how many resumed a session: the client here never does, but a proxy
    // that terminates TLS may to the upstream.
    const upstreamHandshakes = Object.fromEntries(MODES.filter((m) => MODE[m].tls).map((m) => [m, { total: 0, resumed: 0 }]))
    for (let i = 0; i < RUNS; i++) {
      const order = MODES.map((_, k) => MODES[(k + i) % MODES.length])
      for (const mode of order) {
        const before = MODE[mode].tls ? (await seen()).handshakes : null
        const r = await run(mode, clientArgs(mode, ['--task=latency', `--n=${REQUESTS}`, `--warmup=${i === 0 ? 20 : 5}`]), `latency ${mode}`)
        const out = JSON.parse(r.stdout)
        for (const k of ['ms', 'connectMs', 'tlsMs', 'firstByteMs']) latency[mode][k].push(...out[k])
        if (before) {
          const after = (await seen()).handshakes
          const h = upstreamHandshakes[mode]
          h.total += after.total - before.total
          h.resumed = after.resumed == null || h.resumed == null ? null : h.resumed + after.resumed - before.resumed
        }
      }
      log(`latency run ${i + 1}/${RUNS} done`)
    }

    // ------------------------------------------------------------ 3. memory
    // Each run in a fresh host process (role memhost) with its own sandbox:
    // RSS freed by one run stays with the allocator and would hide the next.
    const procRss = (pid) => {
      const m = /^VmRSS:\s+(\d+) kB/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))
      return Number(m[1]) * 1024
    }
    const procFds = (pid) => fs.readdirSync(`/proc/${pid}/fd`).length
    const procNofile = (pid) => {
      const m = /^Max open files\s+(\S+)/m.exec(fs.readFileSync(`/proc/${pid}/limits`, 'utf8'))
      return m ? (m[1] === 'unlimited' ? Infinity : Number(m[1])) : null
    }
    const notes = []
    const memory = []
    let insideNofile = null
    let hostNofile = null
    for (let i = 0; i < RUNS; i++) {
      const mh = fork(__filename, ['--role=memhost', `--cwd=${projectDir}`, `--hold-port=${ports.hold}`, `--client-js=${clientJs}`], {
        env: hostEnv,
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      })
      memhosts.add(mh)
      const mhGone = gone(mh, 'the memory host process')
      try {
        const started = await nextMessage(mh, 'started', mhGone)
        insideNofile = started.insideNofile
        hostNofile = procNofile(mh.pid)
        // One cycle: hold n tunnels, read RSS and fds while they are open.
        const cycle = async (n) => {
          const rssBefore = procRss(mh.pid)
          const fdsBefore = procFds(mh.pid)
          const ready = nextMessage(upstream, 'ready', upstreamGone)
          const held = nextMessage(mh, 'held', mhGone)
          mh.send({ type: 'hold', n })
          const first = await Promise.race([ready, held.then((r) => ({ exited: r }))])
          if (first.exited) {
            const r = first.exited
            throw new Error(`the hold client exited before holding its connections (exit ${r.exitCode}): ${r.stderr.trim()}`)
          }
          const rssDuring = procRss(mh.pid)
          const fdsDuring = procFds(mh.pid)
          const released = nextMessage(upstream, 'released', upstreamGone)
          upstream.send({ type: 'release' })
          await released
          const r = await held
          if (r.exitCode !== 0) throw new Error(`the hold client failed (exit ${r.exitCode}): ${r.stderr.trim()}`)
          const out = JSON.parse(r.stdout)
          const conns = first.ok + 1 // the control tunnel too
          return {
            connections: first.ok,
            failed: first.failed,
            errors: out.errors,
            heldByUpstream: first.held,
            ulimitRaisedInsideTo: r.raisedTo,
            openMs: out.openMs,
            rssBeforeMiB: rssBefore / 2 ** 20,
            rssDuringMiB: rssDuring / 2 ** 20,
            rssAfterMiB: procRss(mh.pid) / 2 ** 20,
            deltaMiB: (rssDuring - rssBefore) / 2 ** 20,
            perConnectionKiB: (rssDuring - rssBefore) / 1024 / conns,
            fdsBefore,
            fdsDuring,
            fdsPerConnection: (fdsDuring - fdsBefore) / conns,
          }
        }
        await cycle(10) // warm-up: the proxy's first connections, the client's start
        const m = await cycle(CONNECTIONS)
        memory.push(m)
        if (m.ulimitRaisedInsideTo) {
          const short = m.ulimitRaisedInsideTo < CONNECTIONS + 64 ? ` (its hard limit; ${CONNECTIONS + 64} wanted)` : ''
          notes.push(`ulimit -n inside the sandbox was ${insideNofile}; the hold client ran with ulimit -n ${m.ulimitRaisedInsideTo}${short}`)
        }
        if (m.failed) {
          const fdHint = Object.keys(m.errors).some((e) => /EMFILE|ENFILE|too many open files/i.test(e))
          notes.push(`${m.failed} of ${CONNECTIONS} tunnels failed${fdHint ? ' (file descriptor limit)' : ''}: ${JSON.stringify(m.errors)}`)
        }
        if (hostNofile != null && hostNofile < 2 * CONNECTIONS + 256) {
          notes.push(`the host process may open ${hostNofile} files; ${CONNECTIONS} proxied connections need ${2 * CONNECTIONS} (raise ulimit -n)`)
        }
        log(`memory run ${i + 1}/${RUNS}: ${m.connections} tunnels (opened in ${m.openMs.toFixed(0)} ms), RSS ${m.rssBeforeMiB.toFixed(1)} -> ${m.rssDuringMiB.toFixed(1)} MiB (${m.perConnectionKiB.toFixed(1)} KiB each), fds +${m.fdsDuring - m.fdsBefore}, after release ${m.rssAfterMiB.toFixed(1)} MiB`)
        const exited = new Promise((resolve) => mh.once('exit', resolve))
        mh.send({ type: 'stop' })
        await exited
      } finally {
        if (mh.exitCode === null && mh.signalCode === null) mh.kill('SIGKILL')
        memhosts.delete(mh)
      }
    }
    load.end = loadavg()

    for (const sb of sandboxes) await sb.stop()
    sandboxes.clear()
    upstream.send({ type: 'exit' })

    // ----------------------------------------------------------- report
    const tp = Object.fromEntries(MODES.map((m) => [m, stats(throughput[m])]))
    const lat = Object.fromEntries(
      MODES.map((m) => [
        m,
        {
          ms: stats(latency[m].ms),
          connectMs: stats(latency[m].connectMs),
          ...(MODE[m].tls ? { tlsMs: stats(latency[m].tlsMs) } : {}),
          firstByteMs: stats(latency[m].firstByteMs),
        },
      ]),
    )
    const compared = MODES.filter((m) => MODE[m].ref)
    const memMed = (k) => stats(memory.map((x) => x[k])).median
    const machine = {
      runtime,
      nproc: os.cpus().length,
      cpu: os.cpus()[0]?.model ?? 'unknown',
      memGiB: +(os.totalmem() / 2 ** 30).toFixed(1),
      kernel: os.release(),
      uid: typeof process.getuid === 'function' ? process.getuid() : null,
      curl: haveCurl,
      loadavg: load,
      addonBuilt,
    }
    const result = {
      bench: 'proxy',
      machine,
      runs: RUNS,
      client: CLIENT,
      size: SIZE,
      throughputMBps: Object.fromEntries(MODES.map((m) => [m, { ...tp[m], all: throughput[m] }])),
      // Each proxied mode against its direct reference: http modes against
      // direct http, HTTPS ones against direct HTTPS.
      reference: Object.fromEntries(compared.map((m) => [m, MODE[m].ref])),
      target: Object.fromEntries(compared.map((m) => [m, MODE[m].target])),
      throughputRatio: Object.fromEntries(compared.map((m) => [m, tp[m].median / tp[MODE[m].ref].median])),
      // CPU seconds the host process (the proxies) spent per GiB; ~0 for direct.
      hostCpuSecPerGiB: Object.fromEntries(MODES.map((m) => [m, stats(hostCpu[m]).median])),
      // What the curl -v checks and the upstream saw (HTTPS modes), and the
      // Authorization of every timed HTTPS download at the upstream.
      routes,
      tlsDownloadsAuthorization: tlsDownloads,
      latency: {
        requestsPerMode: REQUESTS * RUNS,
        ...lat,
        ratioMedian: Object.fromEntries(compared.map((m) => [m, lat[m].ms.median / lat[MODE[m].ref].ms.median])),
        ratioP95: Object.fromEntries(compared.map((m) => [m, lat[m].ms.p95 / lat[MODE[m].ref].ms.p95])),
        upstreamHandshakes,
      },
      memory: {
        connections: CONNECTIONS,
        insideNofile,
        hostNofile,
        runs: memory,
        deltaMiBMedian: memMed('deltaMiB'),
        perConnectionKiBMedian: memMed('perConnectionKiB'),
      },
      notes,
    }

    if (!JSON_ONLY) {
      const f = (x, d = 1) => (x == null || !Number.isFinite(x) ? '-' : x.toFixed(d))
      const label = Object.fromEntries(MODES.map((m) => [m, MODE[m].label]))
      const table = (rows) => {
        const widths = rows[0].map((_, k) => Math.max(...rows.map((r) => r[k].length)))
        for (const row of rows) console.log(row.map((c, k) => c.padEnd(widths[k])).join('  '))
      }
      console.log(
        `bun-sandbox proxy bench — ${machine.runtime}, ${machine.nproc} CPU (${machine.cpu}), ${machine.memGiB} GiB, Linux ${machine.kernel}, uid ${machine.uid}, ${RUNS} runs, client ${CLIENT}`,
      )
      console.log(`load average (1/5/15 min): start ${load.start.join(' ')}, end ${load.end.join(' ')}; addon built ${addonBuilt}`)
      console.log()
      table([
        [`throughput, ${f(SIZE / 2 ** 20, 0)} MiB download`, 'MB/s median', 'min', 'max', 'ratio', 'target', 'proxy CPU s/GiB'],
        ...MODES.map((m) => [
          label[m],
          f(tp[m].median, 0),
          f(tp[m].min, 0),
          f(tp[m].max, 0),
          MODE[m].ref ? f(result.throughputRatio[m], 2) : '-',
          MODE[m].ref ? `>= ${MODE[m].target}` : '-',
          MODE[m].ref ? f(result.hostCpuSecPerGiB[m], 2) : '-',
        ]),
      ])
      for (const [m, r] of Object.entries(routes)) {
        console.log(`${label[m]}: certificate issuer ${r.issuer}; the upstream got ${r.upstreamAuthorization ? `${r.upstreamAuthorization} in Authorization` : 'no Authorization'}`)
      }
      if (tlsDownloads) {
        console.log(`timed HTTPS downloads at the upstream: ${tlsDownloads.real} with the value in Authorization, ${tlsDownloads.none} without, ${tlsDownloads.other} with anything else`)
      }
      console.log()
      table([
        [`new connection + GET /small (${REQUESTS * RUNS} each)`, 'median ms', 'p95 ms', 'ratio median', 'ratio p95', 'connect ms', 'TLS done ms', 'first byte ms', 'upstream TLS resumed'],
        ...MODES.map((m) => [
          label[m],
          f(lat[m].ms.median, 3),
          f(lat[m].ms.p95, 3),
          MODE[m].ref ? f(result.latency.ratioMedian[m], 2) : '-',
          MODE[m].ref ? f(result.latency.ratioP95[m], 2) : '-',
          f(lat[m].connectMs.median, 3),
          MODE[m].tls ? f(lat[m].tlsMs.median, 3) : '-',
          f(lat[m].firstByteMs.median, 3),
          MODE[m].tls ? `${upstreamHandshakes[m].resumed ?? '?'}/${upstreamHandshakes[m].total}` : '-',
        ]),
      ])
      console.log()
      table([
        [`supervisor process, ${CONNECTIONS} CONNECT tunnels held`, 'RSS before MiB', 'RSS during MiB', 'delta MiB', 'KiB / connection', 'fds / connection'],
        ...memory.map((m, i) => [
          `run ${i + 1} (${m.connections} ok, ${m.failed} failed)`,
          f(m.rssBeforeMiB),
          f(m.rssDuringMiB),
          f(m.deltaMiB),
          f(m.perConnectionKiB),
          f(m.fdsPerConnection, 2),
        ]),
      ])
      for (const n of notes) console.log(`note: ${n}`)
    }
    console.log(JSON.stringify(result))
  } finally {
    process.off('SIGINT', onSignal)
    process.off('SIGTERM', onSignal)
    await cleanup()
  }
}
