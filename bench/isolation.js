#!/usr/bin/env node
// Isolation cost benchmark: bun-sandbox against bubblewrap and a plain spawn,
// measured in the same run and reported as ratios. Runs under Node and Bun:
//
//   node bench/isolation.js
//   node_modules/.bin/bun bench/isolation.js
//
// What it measures (ours / reference; lower is better):
//   cold  new Sandbox + exec(['/bin/true']) + stop()  vs  spawnSync('bwrap', [... '/bin/true'])
//         median and p90 of --runs runs after --warmup runs   (target ratio <= 1.0)
//   warm  exec(['/bin/true']) in a started sandbox      vs  spawnSync('/bin/true')
//         median and p90                                     (target ratio <= 1.5)
//   rate  sandboxes created + exec true + stopped per second for --seconds,
//         against bwrap /bin/true runs per second in the same loop (in turns
//         of half a second each); and in a third turn with limits.diskBytes
//         (the WORKDIR's layer in memory, not on the host's disk)
//   idle  --idle sandboxes at once (each started with one exec): time to start
//         them all, then VmRSS of the two bun-sandbox-init processes of one
//         sandbox (the outer helper and the sandbox's PID 1); then stops them.
//
// Each sandbox after the first in a process may take a spare (an init started
// ahead with the host's part of the root built: docs/ARCHITECTURE.md
// "Spares"). Cold and rate are measured with spares, as the product runs, and
// again in a child process with BUN_SANDBOX_SPARE=0: there every sandbox
// starts as the first one of a process does.
//
// Options: --runs=<n> (50), --warmup=<n> (5), --seconds=<s> (3), --idle=<n> (100),
//          --json-only. Needs the built addon (`node scripts/build.js`, release)
//          and bwrap on PATH (`apt-get install -y bubblewrap`).
'use strict'

const { spawnSync } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')

// NODE_EXTRA_CA_CERTS slows every Node start; keep it out of all children.
delete process.env.NODE_EXTRA_CA_CERTS
const childEnv = { ...process.env }
delete childEnv.NODE_EXTRA_CA_CERTS

const { Sandbox, parseSandboxfile } = require('..')

const args = Object.fromEntries(
  process.argv.slice(2).map((a) => {
    const [k, v] = a.replace(/^--/, '').split('=')
    return [k, v === undefined ? true : v]
  }),
)
const RUNS = Number(args.runs ?? 50)
const WARMUP = Number(args.warmup ?? 5)
const SECONDS = Number(args.seconds ?? 3)
const IDLE = Number(args.idle ?? 100)

const runtime = typeof Bun !== 'undefined' ? `bun ${Bun.version}` : `node ${process.version}`

function hasBwrap() {
  const r = spawnSync('bwrap', ['--version'], { env: childEnv })
  return !r.error && r.status === 0 ? String(r.stdout).trim() : null
}
const bwrapVersion = hasBwrap()
if (!bwrapVersion) {
  console.error('bench/isolation.js: bwrap (bubblewrap) is not on PATH. Install it, e.g.:')
  console.error('  apt-get install -y bubblewrap')
  process.exit(1)
}

const projectDir = fs.mkdtempSync(path.join(os.tmpdir(), 'bsb-bench-'))
fs.writeFileSync(path.join(projectDir, 'README'), 'bench project\n')
const config = parseSandboxfile('FROM host\nWORKDIR .\n')

const BWRAP_ARGS = [
  '--unshare-all', '--die-with-parent', '--new-session',
  '--ro-bind', '/', '/', '--dev', '/dev', '--proc', '/proc', '--tmpfs', '/tmp',
  '--bind', projectDir, projectDir, '/bin/true',
]

const now = () => Number(process.hrtime.bigint()) / 1e6 // ms

function stats(xs) {
  const s = [...xs].sort((a, b) => a - b)
  const q = (p) => s[Math.min(s.length - 1, Math.max(0, Math.ceil(p * s.length) - 1))]
  return { median: q(0.5), p90: q(0.9), min: s[0], max: s[s.length - 1], n: s.length }
}

function bwrapOnce() {
  const r = spawnSync('bwrap', BWRAP_ARGS, { env: childEnv, stdio: 'ignore' })
  if (r.status !== 0) throw new Error(`bwrap failed: status ${r.status} ${r.error ?? ''}`)
}
function trueOnce() {
  const r = spawnSync('/bin/true', [], { env: childEnv, stdio: 'ignore' })
  if (r.status !== 0) throw new Error(`/bin/true failed: ${r.error ?? r.status}`)
}

// One cold cycle, with its phases timed: construct, first exec (creates the
// sandbox), stop.
async function oursOnce(phases, options = {}) {
  const t0 = now()
  const sb = new Sandbox(config, { cwd: projectDir, ...options })
  const t1 = now()
  const r = await sb.exec(['/bin/true'])
  const t2 = now()
  await sb.stop()
  const t3 = now()
  if (r.exitCode !== 0) throw new Error(`sandbox exec /bin/true: exit ${r.exitCode}: ${r.stderr}`)
  if (phases) {
    phases.construct.push(t1 - t0)
    phases.exec.push(t2 - t1)
    phases.stop.push(t3 - t2)
  }
  return t3 - t0
}

// Interleave ours and bwrap so both see the same machine state.
async function cold() {
  for (let i = 0; i < WARMUP; i++) {
    await oursOnce()
    bwrapOnce()
  }
  const ours = []
  const bw = []
  const phases = { construct: [], exec: [], stop: [] }
  for (let i = 0; i < RUNS; i++) {
    ours.push(await oursOnce(phases))
    const t = now()
    bwrapOnce()
    bw.push(now() - t)
  }
  return {
    ours: stats(ours),
    bwrap: stats(bw),
    phases: {
      construct: stats(phases.construct).median,
      firstExec: stats(phases.exec).median,
      stop: stats(phases.stop).median,
    },
  }
}

async function warm() {
  const sb = new Sandbox(config, { cwd: projectDir })
  try {
    await sb.exec(['/bin/true'])
    for (let i = 0; i < WARMUP * 2; i++) {
      await sb.exec(['/bin/true'])
      trueOnce()
    }
    const ours = []
    const plain = []
    const n = RUNS * 4
    for (let i = 0; i < n; i++) {
      let t = now()
      const r = await sb.exec(['/bin/true'])
      ours.push(now() - t)
      if (r.exitCode !== 0) throw new Error(`warm exec: exit ${r.exitCode}`)
      t = now()
      trueOnce()
      plain.push(now() - t)
    }
    return { ours: stats(ours), spawn: stats(plain) }
  } finally {
    await sb.stop()
  }
}

// Slices of half a second, ours and bwrap's in turn, --seconds each in all:
// a machine whose speed drifts during the run (a shared virtual machine's
// does, by 10% and more) weighs on all alike. A third turn runs ours with
// limits.diskBytes, which keeps the WORKDIR's layer in memory instead of on
// the host's disk (bwrap's profile binds the project writable: no layer).
// Each switch between the two of ours discards a spare once.
const SLICE_MS = 500
const IN_MEMORY = { limits: { diskBytes: 1 << 30 } }

async function rate() {
  const turns = [
    { n: 0, ms: 0, once: () => oursOnce() },
    { n: 0, ms: 0, once: () => oursOnce(null, IN_MEMORY) },
    { n: 0, ms: 0, once: async () => bwrapOnce() },
  ]
  while (turns[0].ms < SECONDS * 1000) {
    for (const turn of turns) {
      const t0 = now()
      while (now() - t0 < SLICE_MS) {
        await turn.once()
        turn.n++
      }
      turn.ms += now() - t0
    }
  }
  const [ours, inMemory, bwrap] = turns.map((t) => (t.n * 1000) / t.ms)
  return { ours, inMemory, bwrap }
}

function initProcesses() {
  const out = []
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue
    let cmd
    try {
      cmd = fs.readFileSync(`/proc/${name}/cmdline`, 'latin1')
    } catch {
      continue
    }
    const argv0 = cmd.split('\0')[0]
    if (!path.basename(argv0).startsWith('bun-sandbox-init')) continue
    let status
    try {
      status = fs.readFileSync(`/proc/${name}/status`, 'latin1')
    } catch {
      continue
    }
    const field = (k) => (status.match(new RegExp(`^${k}:\\s*(.*)$`, 'm')) || [])[1]
    const nspid = (field('NSpid') || '').trim().split(/\s+/).map(Number)
    out.push({
      pid: Number(name),
      ppid: Number(field('PPid')),
      rssKiB: parseInt(field('VmRSS') || '0', 10),
      // The sandbox's PID 1 is pid 1 in its own pid namespace.
      pid1: nspid.length > 1 && nspid[nspid.length - 1] === 1,
    })
  }
  return out
}

async function idle() {
  const boxes = []
  const t0 = now()
  try {
    // Started concurrently, as an agent host spinning up many at once would.
    for (let i = 0; i < IDLE; i++) boxes.push(new Sandbox(config, { cwd: projectDir }))
    const results = await Promise.all(boxes.map((sb) => sb.exec(['/bin/true'])))
    const startMs = now() - t0
    const failed = results.filter((r) => r.exitCode !== 0).length
    // This process's zygote (the one init it starts, which forks every
    // helper), the helpers and their PID 1s: the sandboxes', and the spare
    // made for the next sandbox when it has started.
    const all = initProcesses()
    const zygotes = all.filter((p) => p.ppid === process.pid)
    const ofZygote = new Set(zygotes.map((p) => p.pid))
    const helpers = new Set(all.filter((p) => ofZygote.has(p.ppid)).map((p) => p.pid))
    const procs = all.filter((p) => helpers.has(p.pid) || helpers.has(p.ppid))
    const outer = procs.filter((p) => !p.pid1)
    const inner = procs.filter((p) => p.pid1)
    const med = (xs) => (xs.length ? stats(xs).median : null)
    const totalKiB = [...procs, ...zygotes].reduce((a, p) => a + p.rssKiB, 0)
    return {
      count: IDLE,
      failed,
      startMs,
      initProcesses: procs.length,
      zygoteRssKiB: zygotes.reduce((a, p) => a + p.rssKiB, 0),
      outerRssKiB: med(outer.map((p) => p.rssKiB)),
      pid1RssKiB: med(inner.map((p) => p.rssKiB)),
      totalRssKiB: totalKiB,
      hostRssKiB: Math.round(process.memoryUsage().rss / 1024),
      stopMs: await (async () => {
        const t = now()
        await Promise.all(boxes.map((sb) => sb.stop()))
        boxes.length = 0
        return now() - t
      })(),
    }
  } finally {
    await Promise.all(boxes.map((sb) => sb.stop().catch(() => {})))
  }
}

function machine() {
  const cpu = os.cpus()[0]?.model ?? 'unknown'
  return {
    runtime,
    nproc: os.cpus().length,
    kernel: os.release(),
    cpu,
    memGiB: +(os.totalmem() / 2 ** 30).toFixed(1),
    bwrap: bwrapVersion,
  }
}

const f = (x, d = 2) => (x == null ? '-' : x.toFixed(d))

// Cold and rate in a child process without spares.
function withoutSpares() {
  const r = spawnSync(process.execPath, [__filename, '--no-spares-part', `--runs=${RUNS}`, `--warmup=${WARMUP}`, `--seconds=${SECONDS}`], {
    env: { ...childEnv, BUN_SANDBOX_SPARE: '0' },
    encoding: 'utf8',
  })
  if (r.status !== 0) throw new Error(`the run without spares failed: ${r.stderr}`)
  return JSON.parse(r.stdout.trim().split('\n').pop())
}

async function main() {
  if (args['no-spares-part']) {
    const c = await cold()
    const r = await rate()
    fs.rmSync(projectDir, { recursive: true, force: true })
    console.log(JSON.stringify({ cold: c, rate: r }))
    return
  }
  const m = machine()
  const c = await cold()
  const w = await warm()
  const r = await rate()
  const i = await idle()
  fs.rmSync(projectDir, { recursive: true, force: true })
  const n = withoutSpares()

  const result = {
    machine: m,
    cold: {
      oursMedianMs: c.ours.median, oursP90Ms: c.ours.p90,
      bwrapMedianMs: c.bwrap.median, bwrapP90Ms: c.bwrap.p90,
      ratioMedian: c.ours.median / c.bwrap.median, ratioP90: c.ours.p90 / c.bwrap.p90,
      phasesMedianMs: c.phases, runs: RUNS,
    },
    warm: {
      oursMedianMs: w.ours.median, oursP90Ms: w.ours.p90,
      spawnMedianMs: w.spawn.median, spawnP90Ms: w.spawn.p90,
      ratioMedian: w.ours.median / w.spawn.median, ratioP90: w.ours.p90 / w.spawn.p90,
      runs: w.ours.n,
    },
    rate: {
      oursPerSec: r.ours, bwrapPerSec: r.bwrap, ratio: r.ours / r.bwrap, seconds: SECONDS,
      inMemoryPerSec: r.inMemory, inMemoryRatio: r.inMemory / r.bwrap,
    },
    withoutSpares: {
      coldOursMedianMs: n.cold.ours.median, coldBwrapMedianMs: n.cold.bwrap.median,
      coldRatioMedian: n.cold.ours.median / n.cold.bwrap.median,
      rateOursPerSec: n.rate.ours, rateBwrapPerSec: n.rate.bwrap, rateRatio: n.rate.ours / n.rate.bwrap,
      rateInMemoryPerSec: n.rate.inMemory, rateInMemoryRatio: n.rate.inMemory / n.rate.bwrap,
    },
    idle: i,
  }

  if (!args['json-only']) {
    const rows = [
      ['measure', 'bun-sandbox', 'reference', 'ratio', 'target'],
      ['cold median (ms)', f(c.ours.median), `${f(c.bwrap.median)} bwrap`, f(result.cold.ratioMedian), '<= 1.0'],
      ['cold p90 (ms)', f(c.ours.p90), `${f(c.bwrap.p90)} bwrap`, f(result.cold.ratioP90), '<= 1.0'],
      ['warm median (ms)', f(w.ours.median, 3), `${f(w.spawn.median, 3)} spawn`, f(result.warm.ratioMedian), '<= 1.5'],
      ['warm p90 (ms)', f(w.ours.p90, 3), `${f(w.spawn.p90, 3)} spawn`, f(result.warm.ratioP90), '<= 1.5'],
      ['rate (/s)', f(r.ours, 1), `${f(r.bwrap, 1)} bwrap`, f(result.rate.ratio), '>= 1.0'],
      ['rate, layer in memory (/s)', f(r.inMemory, 1), `${f(r.bwrap, 1)} bwrap`, f(result.rate.inMemoryRatio), ''],
      ['cold median, no spares (ms)', f(n.cold.ours.median), `${f(n.cold.bwrap.median)} bwrap`, f(result.withoutSpares.coldRatioMedian), '<= 1.0'],
      ['rate, no spares (/s)', f(n.rate.ours, 1), `${f(n.rate.bwrap, 1)} bwrap`, f(result.withoutSpares.rateRatio), '>= 1.0'],
      ['rate, no spares, in memory (/s)', f(n.rate.inMemory, 1), `${f(n.rate.bwrap, 1)} bwrap`, f(result.withoutSpares.rateInMemoryRatio), ''],
      [`start ${IDLE} idle (ms)`, f(i.startMs, 0), '', '', ''],
      [`stop ${IDLE} idle (ms)`, f(i.stopMs, 0), '', '', ''],
      ['idle outer init RSS (KiB)', String(i.outerRssKiB), '', '', ''],
      ['idle PID 1 init RSS (KiB)', String(i.pid1RssKiB), '', '', ''],
    ]
    const widths = rows[0].map((_, k) => Math.max(...rows.map((row) => row[k].length)))
    console.log(`bun-sandbox isolation bench — ${m.runtime}, ${m.nproc} CPU (${m.cpu}), Linux ${m.kernel}, ${m.bwrap}`)
    console.log(`cold phases (median ms): new Sandbox ${f(c.phases.construct, 3)}, first exec ${f(c.phases.firstExec)}, stop ${f(c.phases.stop)}`)
    console.log(`idle: ${i.initProcesses} init processes for ${IDLE} sandboxes and the spare, and the zygote (${i.zygoteRssKiB} KiB) (${i.failed} failed), total init RSS ${(i.totalRssKiB / 1024).toFixed(1)} MiB, host RSS ${(i.hostRssKiB / 1024).toFixed(1)} MiB`)
    for (const row of rows) console.log(row.map((cell, k) => cell.padEnd(widths[k])).join('  '))
  }
  console.log(JSON.stringify(result))
}

main().catch((e) => {
  console.error(e)
  fs.rmSync(projectDir, { recursive: true, force: true })
  process.exit(1)
})
