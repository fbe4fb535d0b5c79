#!/usr/bin/env node
// A/B of two builds of bun-sandbox in one process: each runs a loop of
// new Sandbox + exec(['true']) + stop() for half a second, in turns, and the
// rates and median first-exec times are compared. On a machine whose speed
// drifts by 10% and more within minutes, two runs one after the other differ
// by more than most changes do; in turns, two copies of the same build agree
// within about 3% a run (0.995–1.030 in three runs here): run it a few times.
//
//   node bench/ab.js <dir of build A> <dir of build B>
//   node_modules/.bin/bun bench/ab.js . /path/to/other/checkout
//
// Each dir holds a built checkout (or an installed package): its index.js,
// its .node and bun-sandbox-init (beside it, or in its target/). Options:
// --rounds=<n> (12), --slice=<ms> (500), --gap=<ms> (0: a pause after each
// sandbox, so that its spare is ready for the next, as in an agent's use).
// With BUN_SANDBOX_SPARE=0 both run without spares.
'use strict'

const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')

const args = process.argv.slice(2)
const opt = (name, dflt) => {
  const a = args.find((x) => x.startsWith(`--${name}=`))
  return a ? Number(a.split('=')[1]) : dflt
}
const dirs = args.filter((a) => !a.startsWith('--'))
if (dirs.length !== 2) {
  console.error('usage: bench/ab.js <dir of build A> <dir of build B> [--rounds=12] [--slice=500] [--gap=0]')
  process.exit(2)
}
const ROUNDS = opt('rounds', 12)
const SLICE = opt('slice', 500)
const GAP = opt('gap', 0)

const builds = dirs.map((d) => require(path.resolve(d, 'index.js')))
if (builds[0].Sandbox === builds[1].Sandbox) {
  console.error('both dirs load the same module: give two different checkouts')
  process.exit(2)
}

const now = () => performance.now()
const sleep = (ms) => new Promise((r) => setTimeout(r, ms))
const median = (xs) => xs.slice().sort((a, b) => a - b)[xs.length >> 1]

async function main() {
  const cwd = fs.mkdtempSync(path.join(os.tmpdir(), 'bsb-ab-'))
  const runs = builds.map(() => ({ n: 0, ms: 0, first: [] }))
  try {
    for (let r = 0; r < ROUNDS; r++) {
      for (const [i, { Sandbox, parseSandboxfile }] of builds.entries()) {
        const config = parseSandboxfile('FROM host\nWORKDIR .\n')
        const run = runs[i]
        const t0 = now()
        while (now() - t0 < SLICE) {
          const t = now()
          const sb = new Sandbox(config, { cwd })
          const res = await sb.exec(['true'])
          run.first.push(now() - t)
          await sb.stop()
          if (res.exitCode !== 0) throw new Error(`build ${dirs[i]}: exec true: exit ${res.exitCode}: ${res.stderr}`)
          run.n++
          if (GAP) await sleep(GAP)
        }
        run.ms += now() - t0
      }
    }
  } finally {
    fs.rmSync(cwd, { recursive: true, force: true })
  }
  const rates = runs.map((r) => (r.n * 1000) / r.ms)
  const firsts = runs.map((r) => median(r.first))
  for (const [i, d] of dirs.entries()) {
    console.log(`${'AB'[i]} ${d}: ${rates[i].toFixed(1)} sandboxes/s, first exec ${firsts[i].toFixed(2)} ms (median of ${runs[i].n})`)
  }
  console.log(`B/A: rate ${(rates[1] / rates[0]).toFixed(3)}, first exec ${(firsts[1] / firsts[0]).toFixed(3)}`)
}

main().catch((e) => {
  console.error(e)
  process.exit(1)
})
