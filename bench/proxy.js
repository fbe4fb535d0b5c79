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
// /bytes/<n> from one reused 1 MiB buffer and /small (a 2-byte body), plus a
// raw TCP server that holds connections open. A sandbox (`FROM host`,
// `NET api.example.com`) reaches it through `network.resolve`. Measures:
//
//   throughput  a --size download (default 1 GiB) with curl: directly on the
//               host to 127.0.0.1:<port>, and inside the sandbox through the
//               proxy as (a) a forward request (`-x http://proxy`), (b) a
//               CONNECT tunnel (`-x http://proxy -p`), (c) SOCKS5
//               (`-x socks5h://proxy`). MB/s from curl's size/time_total;
//               median of --runs, ratio to direct (target >= 0.5), and the
//               CPU time of this process (the proxy's threads) per GiB.
//               Without curl on PATH (or with --client=js), one small
//               Node/Bun client (this file, --role=client) does it both sides.
//   latency     --requests sequential GET /small per run, each on a new
//               connection (Connection: close), timed by one client process
//               from before connect() to the end of the response: direct on
//               the host, and inside through each proxy mode (CONNECT and
//               SOCKS5 include their handshakes). Median and p95, ratios.
//   memory      in a fresh host process per run (--role=memhost, its own
//               sandbox, `NET hold.example.com`): its RSS (VmRSS, what
//               process.memoryUsage().rss reports) and open fds before, and
//               while --connections CONNECT tunnels to the raw server are
//               held open by one client inside; delta in MiB and KiB per
//               connection. (In one process, memory freed by a run stays
//               with the allocator and hides the next run's cost.)
//
// No sleeps synchronise anything: the upstream reports over IPC when the
// client inside has opened every tunnel (the client says so through one
// more tunnel), and the client exits when the upstream closes them.
//
// Options: --runs=<n> (3), --size=<bytes> (1073741824), --requests=<n> (200
//          per mode per run), --connections=<n> (1000), --client=curl|js,
//          --json-only.
// Needs the built addon (`node scripts/build.js`, release).
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
  const CHUNK = Buffer.alloc(1 << 20, 'x')
  const server = http.createServer((req, res) => {
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
  })
  server.keepAliveTimeout = 1000

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
    } else if (msg.type === 'exit') {
      process.exit(0)
    }
  })
  process.on('disconnect', () => process.exit(0))
  let listening = 0
  const up = () => {
    if (++listening === 2) process.send({ type: 'listening', http: server.address().port, hold: hold.address().port })
  }
  server.listen(0, '127.0.0.1', up)
  hold.listen({ port: 0, host: '127.0.0.1', backlog: 4096 }, up)
}

// ================================================================== client
// Runs on the host (direct) and inside the sandbox (through the proxy): the
// same code both sides.
//
// One request on a new connection. mode: direct | forward | connect | socks.
// Resolves { ms, connectMs, firstByteMs, bytes } once the body is complete.
function request(o) {
  return new Promise((resolve, reject) => {
    const t0 = nowNs()
    const to = splitAddr(o.mode === 'direct' ? o.target : o.proxy)
    const sock = net.connect({ host: to.host, port: to.port })
    sock.setNoDelay(true)
    const authority = `${o.host}:${o.port}`
    const get = Buffer.from(
      `GET ${o.mode === 'forward' ? `http://${authority}${o.path}` : o.path} HTTP/1.1\r\n` +
        `Host: ${authority}\r\nConnection: close\r\n\r\n`,
    )
    let stage = 'connecting'
    let buf = Buffer.alloc(0)
    let connectMs = 0
    let firstByteMs = 0
    let length = -1
    let body = 0
    let done = false
    const fail = (why) => {
      if (done) return
      done = true
      sock.destroy()
      reject(new Error(`${o.mode} ${o.path}: ${why}`))
    }
    const finish = () => {
      if (done) return
      done = true
      sock.destroy()
      resolve({ ms: msSince(t0), connectMs, firstByteMs, bytes: body })
    }
    sock.on('connect', () => {
      connectMs = msSince(t0)
      if (o.mode === 'socks') {
        stage = 'socks-method'
        sock.write(Buffer.from([5, 1, 0]))
      } else if (o.mode === 'connect') {
        stage = 'connect'
        sock.write(`CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\n\r\n`)
      } else {
        stage = 'head'
        sock.write(get)
      }
    })
    sock.on('data', (d) => {
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
          sock.write(Buffer.concat([Buffer.from([5, 1, 0, 3, name.length]), name, port]))
          stage = 'socks-reply'
        } else if (stage === 'socks-reply') {
          if (buf.length < 5) return
          if (buf[1] !== 0) return fail(`SOCKS5 reply code ${buf[1]}`)
          const alen = buf[3] === 1 ? 4 : buf[3] === 4 ? 16 : 1 + buf[4]
          if (buf.length < 4 + alen + 2) return
          buf = buf.subarray(4 + alen + 2)
          sock.write(get)
          stage = 'head'
        } else if (stage === 'connect') {
          const end = buf.indexOf('\r\n\r\n')
          if (end < 0) return
          const status = buf.subarray(0, buf.indexOf('\r\n')).toString('latin1')
          if (!/^HTTP\/1\.[01] 200/.test(status)) return fail(`CONNECT answered "${status}"`)
          buf = buf.subarray(end + 4)
          sock.write(get)
          stage = 'head'
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
    })
    sock.on('error', (e) => fail(e.message))
    sock.on('close', () => {
      if (stage === 'body' && length < 0) finish()
      else fail(`connection closed in stage ${stage} (${body}/${length} body bytes)`)
    })
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
  }
  let out
  if (args.task === 'latency') {
    const n = Number(args.n ?? 200)
    const warm = Number(args.warmup ?? 10)
    for (let i = 0; i < warm; i++) await request(o)
    const ms = []
    const connectMs = []
    const firstByteMs = []
    for (let i = 0; i < n; i++) {
      const r = await request(o)
      if (r.bytes !== 2) throw new Error(`latency: got ${r.bytes} body bytes, want 2`)
      ms.push(r.ms)
      connectMs.push(r.connectMs)
      firstByteMs.push(r.firstByteMs)
    }
    out = { ms, connectMs, firstByteMs }
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

  const projectDir = fs.mkdtempSync(path.join(os.tmpdir(), 'bsb-proxy-'))
  // The client, as a file both sides run (the sandbox sees the project dir).
  const clientJs = path.join(projectDir, 'proxy-client.js')
  fs.copyFileSync(__filename, clientJs)
  const runtimeBin = process.execPath

  let upstream = null
  let sb = null
  const memhosts = new Set()
  const cleanup = async () => {
    for (const mh of memhosts) mh.kill('SIGKILL')
    if (sb) await sb.stop().catch(() => {})
    sb = null
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
    // ------------------------------------------------------------ upstream
    upstream = fork(__filename, ['--role=upstream'], {
      env: hostEnv,
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

    // ------------------------------------------------------------- sandbox
    const config = parseSandboxfile('FROM host\nWORKDIR .\nNET api.example.com\n')
    sb = new Sandbox(config, {
      cwd: projectDir,
      network: {
        resolve: {
          'api.example.com': `127.0.0.1:${ports.http}`,
        },
      },
    })
    const inside = async (argv, what) => {
      const r = await sb.exec(argv, { timeoutMs: 300000 })
      if (r.exitCode !== 0) throw new Error(`${what} inside failed (exit ${r.exitCode}): ${r.stderr.trim() || r.stdout.trim()}`)
      return r
    }
    const probe = await inside(['sh', '-c', 'printf "%s\\n" "$HTTP_PROXY"'], 'probe')
    const httpProxy = probe.stdout.trim()
    const proxyAddr = httpProxy.replace(/^http:\/\//, '').replace(/\/$/, '')
    if (!/^127\.0\.0\.1:\d+$/.test(proxyAddr)) throw new Error(`unexpected HTTP_PROXY inside: ${JSON.stringify(httpProxy)}`)

    const host = (argv) =>
      new Promise((resolve, reject) => {
        const child = spawn(argv[0], argv.slice(1), { env: hostEnv, stdio: ['ignore', 'pipe', 'pipe'] })
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
    const run = (mode, argv, what) => (mode === 'direct' ? onHost(argv, what) : inside(argv, what))

    const MODES = ['direct', 'forward', 'connect', 'socks']
    const clientArgs = (mode, extra) => [
      runtimeBin,
      clientJs,
      '--role=client',
      `--mode=${mode}`,
      `--proxy=${proxyAddr}`,
      `--target=127.0.0.1:${ports.http}`,
      `--host=${mode === 'direct' ? '127.0.0.1' : 'api.example.com'}`,
      `--port=${mode === 'direct' ? ports.http : 80}`,
      ...extra,
    ]
    const curlArgs = (mode, urlPath, extra = []) => {
      const url = mode === 'direct' ? `http://127.0.0.1:${ports.http}${urlPath}` : `http://api.example.com${urlPath}`
      const via = {
        direct: ['--noproxy', '*'],
        forward: ['-x', `http://${proxyAddr}`],
        connect: ['-x', `http://${proxyAddr}`, '-p'],
        socks: ['-x', `socks5h://${proxyAddr}`],
      }[mode]
      return ['curl', '-sS', '--fail', ...via, ...extra, url]
    }

    // -------------------------------------------------------- 1. throughput
    // MB/s, and the CPU time this process (all its threads: the proxy runs
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
    if (CLIENT === 'curl') {
      // Make sure curl really took the route each mode names.
      const expect = {
        forward: /> GET http:\/\/api\.example\.com\/small/,
        connect: /CONNECT api\.example\.com:80/,
        socks: /SOCKS5/i,
      }
      for (const mode of ['forward', 'connect', 'socks']) {
        const r = await inside(curlArgs(mode, '/small', ['-v', '-o', '/dev/null']), `curl -v ${mode}`)
        if (!expect[mode].test(r.stderr)) throw new Error(`curl ${mode} did not go through the proxy as ${mode}:\n${r.stderr}`)
      }
    }
    const throughput = Object.fromEntries(MODES.map((m) => [m, []]))
    const hostCpu = Object.fromEntries(MODES.map((m) => [m, []]))
    {
      const warm = Math.min(SIZE, 64 * 2 ** 20)
      for (const mode of MODES) await download(mode, warm)
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
    }

    // ----------------------------------------------------------- 2. latency
    const latency = Object.fromEntries(MODES.map((m) => [m, { ms: [], connectMs: [], firstByteMs: [] }]))
    for (let i = 0; i < RUNS; i++) {
      const order = MODES.map((_, k) => MODES[(k + i) % MODES.length])
      for (const mode of order) {
        const r = await run(mode, clientArgs(mode, ['--task=latency', `--n=${REQUESTS}`, `--warmup=${i === 0 ? 20 : 5}`]), `latency ${mode}`)
        const out = JSON.parse(r.stdout)
        for (const k of ['ms', 'connectMs', 'firstByteMs']) latency[mode][k].push(...out[k])
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

    await sb.stop()
    sb = null
    upstream.send({ type: 'exit' })

    // ----------------------------------------------------------- report
    const tp = Object.fromEntries(MODES.map((m) => [m, stats(throughput[m])]))
    const lat = Object.fromEntries(
      MODES.map((m) => [m, { ms: stats(latency[m].ms), connectMs: stats(latency[m].connectMs), firstByteMs: stats(latency[m].firstByteMs) }]),
    )
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
    }
    const result = {
      bench: 'proxy',
      machine,
      runs: RUNS,
      client: CLIENT,
      size: SIZE,
      throughputMBps: Object.fromEntries(MODES.map((m) => [m, { ...tp[m], all: throughput[m] }])),
      throughputRatio: Object.fromEntries(MODES.slice(1).map((m) => [m, tp[m].median / tp.direct.median])),
      // CPU seconds the host process (the proxy) spent per GiB; ~0 for direct.
      hostCpuSecPerGiB: Object.fromEntries(MODES.map((m) => [m, stats(hostCpu[m]).median])),
      latency: {
        requestsPerMode: REQUESTS * RUNS,
        ...lat,
        ratioMedian: Object.fromEntries(MODES.slice(1).map((m) => [m, lat[m].ms.median / lat.direct.ms.median])),
        ratioP95: Object.fromEntries(MODES.slice(1).map((m) => [m, lat[m].ms.p95 / lat.direct.ms.p95])),
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
      const label = { direct: 'direct (host)', forward: 'forward proxy', connect: 'CONNECT', socks: 'SOCKS5' }
      const table = (rows) => {
        const widths = rows[0].map((_, k) => Math.max(...rows.map((r) => r[k].length)))
        for (const row of rows) console.log(row.map((c, k) => c.padEnd(widths[k])).join('  '))
      }
      console.log(
        `bun-sandbox proxy bench — ${machine.runtime}, ${machine.nproc} CPU (${machine.cpu}), ${machine.memGiB} GiB, Linux ${machine.kernel}, uid ${machine.uid}, ${RUNS} runs, client ${CLIENT}`,
      )
      console.log(`load average (1/5/15 min): start ${load.start.join(' ')}, end ${load.end.join(' ')}`)
      console.log()
      table([
        [`throughput, ${f(SIZE / 2 ** 20, 0)} MiB download`, 'MB/s median', 'min', 'max', 'ratio', 'target', 'proxy CPU s/GiB'],
        ...MODES.map((m) => [
          label[m],
          f(tp[m].median, 0),
          f(tp[m].min, 0),
          f(tp[m].max, 0),
          m === 'direct' ? '-' : f(result.throughputRatio[m], 2),
          m === 'direct' ? '-' : '>= 0.5',
          m === 'direct' ? '-' : f(result.hostCpuSecPerGiB[m], 2),
        ]),
      ])
      console.log()
      table([
        [`new connection + GET /small (${REQUESTS * RUNS} each)`, 'median ms', 'p95 ms', 'ratio median', 'ratio p95', 'connect ms', 'first byte ms'],
        ...MODES.map((m) => [
          label[m],
          f(lat[m].ms.median, 3),
          f(lat[m].ms.p95, 3),
          m === 'direct' ? '-' : f(result.latency.ratioMedian[m], 2),
          m === 'direct' ? '-' : f(result.latency.ratioP95[m], 2),
          f(lat[m].connectMs.median, 3),
          f(lat[m].firstByteMs.median, 3),
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
