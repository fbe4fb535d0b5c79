#!/usr/bin/env node
// Lifecycle benchmark: bun-sandbox against the same steps done outside any
// sandbox, measured in the same run (interleaved) and reported as ratios.
// Runs under Node and Bun:
//
//   node bench/lifecycle.js
//   node_modules/.bin/bun bench/lifecycle.js
//
// What it measures (medians of --runs runs):
//   run     new Sandbox(examples/quickstart) + run() (DEV `bun run src/server.ts`
//           ready on PORT 3000, TEST `bun test`) + stop()
//           vs  spawn the server, poll until its port accepts TCP, `bun test`,
//           kill the server (in a copy of examples/quickstart, on a free port)
//   ready   readiness detection latency: a SERVICE `node -e` server prints
//           Date.now() when it listens; time from that to startServices()
//           resolving (median and p90)
//   stream  TEST `cat` of a 256 MiB file made by a RUN inside the sandbox,
//           bytes counted in onStdout  vs  child_process.spawn('cat', [file])
//           counting stdout bytes outside; MB/s both (target ratio >= 0.5)
//           File creation is not timed.
//
// Options: --runs=<n> (10), --size=<bytes> (268435456), --json-only.
// Needs the built addon (`node scripts/build.js`, release) and bun in
// node_modules/.bin (npm install).
'use strict'

const { spawn } = require('node:child_process')
const fs = require('node:fs')
const net = require('node:net')
const os = require('node:os')
const path = require('node:path')

// NODE_EXTRA_CA_CERTS slows every Node start; keep it out of all children.
delete process.env.NODE_EXTRA_CA_CERTS
const repo = path.resolve(__dirname, '..')
const binDir = path.join(repo, 'node_modules', '.bin')
const childEnv = { ...process.env, PATH: `${binDir}${path.delimiter}${process.env.PATH ?? ''}` }
delete childEnv.NODE_EXTRA_CA_CERTS

const { Sandbox, parseSandboxfile } = require('..')

const args = Object.fromEntries(
  process.argv.slice(2).map((a) => {
    const [k, v] = a.replace(/^--/, '').split('=')
    return [k, v === undefined ? true : v]
  }),
)
const RUNS = Number(args.runs ?? 10)
const SIZE = Number(args.size ?? 268435456)
const JSON_ONLY = !!args['json-only']

const runtime = typeof Bun !== 'undefined' ? `bun ${Bun.version}` : `node ${process.version}`
const now = () => Number(process.hrtime.bigint()) / 1e6 // ms
const log = (...a) => { if (!JSON_ONLY) console.error(...a) }

function stats(xs) {
  const s = [...xs].sort((a, b) => a - b)
  const q = (p) => s[Math.min(s.length - 1, Math.max(0, Math.ceil(p * s.length) - 1))]
  return { median: q(0.5), p90: q(0.9), min: s[0], max: s[s.length - 1], n: s.length }
}

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer()
    srv.once('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address()
      srv.close(() => resolve(port))
    })
  })
}

function canConnect(port) {
  return new Promise((resolve) => {
    const s = net.connect({ port, host: '127.0.0.1' })
    s.once('connect', () => { s.destroy(); resolve(true) })
    s.once('error', () => { s.destroy(); resolve(false) })
  })
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

function waitExit(child) {
  return new Promise((resolve, reject) => {
    child.once('error', reject)
    child.once('close', (code, signal) => resolve({ code, signal }))
  })
}

// ---------------------------------------------------------------- 1. run()
const quickstart = path.join(repo, 'examples', 'quickstart')
const quickstartConfig = parseSandboxfile(fs.readFileSync(path.join(quickstart, 'Sandboxfile'), 'utf8'))
// The outside run works in a copy, so the server's logs/ never lands in the repo.
const outsideDir = fs.mkdtempSync(path.join(os.tmpdir(), 'bsb-lifecycle-'))
fs.cpSync(quickstart, outsideDir, { recursive: true })

async function runSandboxOnce() {
  const t0 = now()
  const sb = new Sandbox(quickstartConfig, { cwd: quickstart, env: childEnv })
  let r
  try {
    r = await sb.run()
  } finally {
    await sb.stop()
  }
  const ms = now() - t0
  if (!r.success) throw new Error(`sandbox run() failed: ${JSON.stringify(r)}`)
  return ms
}

async function runOutsideOnce() {
  const port = await freePort()
  const env = { ...childEnv, PORT: String(port) }
  const t0 = now()
  const server = spawn('bun', ['run', 'src/server.ts'], { cwd: outsideDir, env, stdio: 'ignore' })
  const serverExit = waitExit(server)
  let exited = false
  serverExit.then(() => { exited = true }, () => { exited = true })
  const deadline = Date.now() + 60000
  while (!(await canConnect(port))) {
    if (exited || Date.now() > deadline) throw new Error('outside server did not become ready')
    await sleep(5)
  }
  const test = spawn('bun', ['test'], { cwd: outsideDir, env, stdio: 'ignore' })
  const { code } = await waitExit(test)
  server.kill('SIGTERM')
  await serverExit
  const ms = now() - t0
  if (code !== 0) throw new Error(`outside bun test failed: exit ${code}`)
  return ms
}

async function benchRun() {
  // One warm-up each (bun's transpiler cache, page cache).
  await runSandboxOnce()
  await runOutsideOnce()
  const ours = []
  const ref = []
  for (let i = 0; i < RUNS; i++) {
    ours.push(await runSandboxOnce())
    ref.push(await runOutsideOnce())
    log(`run ${i + 1}/${RUNS}: sandbox ${ours.at(-1).toFixed(1)} ms, outside ${ref.at(-1).toFixed(1)} ms`)
  }
  const o = stats(ours)
  const r = stats(ref)
  return { sandboxMs: o, outsideMs: r, ratio: o.median / r.median }
}

// -------------------------------------------------------------- 2. readiness
async function readyOnce(projectDir) {
  const port = 4000 + Math.floor(Math.random() * 1000)
  const cmd = `node -e "require('net').createServer().listen(${port},()=>console.log('T'+Date.now()))"`
  const config = parseSandboxfile(`FROM host\nWORKDIR .\nSERVICE ready PORT=${port} ${cmd}\n`)
  let listenedAt = null
  let gotStamp
  const stamp = new Promise((r) => { gotStamp = r })
  let buf = ''
  const sb = new Sandbox(config, {
    cwd: projectDir,
    env: childEnv,
    onStdout(name, data) {
      buf += data
      const m = /T(\d{13})/.exec(buf)
      if (m && listenedAt == null) { listenedAt = Number(m[1]); gotStamp() }
    },
  })
  try {
    await sb.startServices()
    const resolvedAt = Date.now()
    await Promise.race([stamp, sleep(5000)])
    if (listenedAt == null) throw new Error(`readiness: no timestamp from the service (stdout ${JSON.stringify(buf)})`)
    return resolvedAt - listenedAt
  } finally {
    await sb.stop()
  }
}

async function benchReady() {
  const projectDir = fs.mkdtempSync(path.join(os.tmpdir(), 'bsb-ready-'))
  fs.writeFileSync(path.join(projectDir, 'README'), 'bench project\n')
  await readyOnce(projectDir) // warm-up
  const xs = []
  for (let i = 0; i < RUNS; i++) xs.push(await readyOnce(projectDir))
  log(`ready: ${xs.map((x) => x.toFixed(0)).join(' ')} ms`)
  return { latencyMs: stats(xs) }
}

// ----------------------------------------------------------------- 3. stream
async function benchStream() {
  const projectDir = fs.mkdtempSync(path.join(os.tmpdir(), 'bsb-stream-'))
  fs.writeFileSync(path.join(projectDir, 'README'), 'bench project\n')
  const hostFile = path.join(projectDir, 'big-host')
  {
    const fd = fs.openSync(hostFile, 'w')
    const chunk = Buffer.alloc(1 << 20)
    for (let left = SIZE; left > 0; left -= chunk.length) fs.writeSync(fd, chunk, 0, Math.min(left, chunk.length))
    fs.closeSync(fd)
  }
  const config = parseSandboxfile(
    `FROM host\nWORKDIR .\nRUN head -c ${SIZE} /dev/zero > /tmp/big\nTEST cat /tmp/big\n`,
  )
  let bytes = 0
  const sb = new Sandbox(config, {
    cwd: projectDir,
    env: childEnv,
    onStdout(_name, data) { bytes += data.length }, // NUL bytes: 1 char = 1 byte
  })
  const ours = []
  const ref = []
  try {
    if (!(await sb.runSetup())) throw new Error('stream: RUN (file creation) failed')
    const sandboxOnce = async () => {
      bytes = 0
      const t0 = now()
      const r = await sb.runTests()
      const ms = now() - t0
      if (!r.passed) throw new Error(`stream: TEST cat failed ${JSON.stringify(r)}`)
      if (bytes !== SIZE) throw new Error(`stream: sandbox got ${bytes} bytes, want ${SIZE}`)
      return (SIZE / 1e6) / (ms / 1000)
    }
    const outsideOnce = async () => {
      let n = 0
      const t0 = now()
      const child = spawn('cat', [hostFile], { env: childEnv, stdio: ['ignore', 'pipe', 'ignore'] })
      child.stdout.on('data', (d) => { n += d.length })
      const { code } = await waitExit(child)
      const ms = now() - t0
      if (code !== 0 || n !== SIZE) throw new Error(`stream: outside cat exit ${code}, ${n} bytes`)
      return (SIZE / 1e6) / (ms / 1000)
    }
    await sandboxOnce() // warm-up
    await outsideOnce()
    for (let i = 0; i < RUNS; i++) {
      ours.push(await sandboxOnce())
      ref.push(await outsideOnce())
    }
    log(`stream MB/s: sandbox ${ours.map((x) => x.toFixed(0)).join(' ')}; outside ${ref.map((x) => x.toFixed(0)).join(' ')}`)
  } finally {
    await sb.stop()
    fs.rmSync(projectDir, { recursive: true, force: true })
  }
  const o = stats(ours)
  const r = stats(ref)
  return { bytes: SIZE, sandboxMBps: o, outsideMBps: r, ratio: o.median / r.median }
}

// ------------------------------------------------------------------- main
function machine() {
  return {
    runtime,
    nproc: os.cpus().length,
    kernel: os.release(),
    cpu: os.cpus()[0]?.model ?? 'unknown',
    memGiB: +(os.totalmem() / 2 ** 30).toFixed(1),
    uid: typeof process.getuid === 'function' ? process.getuid() : null,
  }
}

const f = (x, d = 1) => (x == null ? '-' : x.toFixed(d))

async function main() {
  const m = machine()
  const run = await benchRun()
  const ready = await benchReady()
  const stream = await benchStream()
  fs.rmSync(outsideDir, { recursive: true, force: true })
  const result = { bench: 'lifecycle', machine: m, runs: RUNS, run, ready, stream }
  if (!JSON_ONLY) {
    const rows = [
      ['measure', 'bun-sandbox', 'outside', 'ratio', 'target'],
      ['run() quickstart + stop (ms, median)', f(run.sandboxMs.median), f(run.outsideMs.median), f(run.ratio, 2), '-'],
      ['  p90 (ms)', f(run.sandboxMs.p90), f(run.outsideMs.p90), f(run.sandboxMs.p90 / run.outsideMs.p90, 2), '-'],
      ['readiness latency (ms, median)', f(ready.latencyMs.median), '-', '-', '-'],
      ['  p90 (ms)', f(ready.latencyMs.p90), '-', '-', '-'],
      [`stream ${SIZE / 2 ** 20} MiB cat (MB/s, median)`, f(stream.sandboxMBps.median, 0), f(stream.outsideMBps.median, 0), f(stream.ratio, 2), '>= 0.5'],
    ]
    const widths = rows[0].map((_, k) => Math.max(...rows.map((r) => r[k].length)))
    console.log(`bun-sandbox lifecycle bench — ${m.runtime}, ${m.nproc} CPU (${m.cpu}), ${m.memGiB} GiB, Linux ${m.kernel}, uid ${m.uid}, ${RUNS} runs`)
    for (const row of rows) console.log(row.map((cell, k) => cell.padEnd(widths[k])).join('  '))
  }
  console.log(JSON.stringify(result))
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(e)
    process.exit(1)
  },
)
