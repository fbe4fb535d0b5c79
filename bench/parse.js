#!/usr/bin/env node
// Sandboxfile parser benchmark, through the JS API. Runs under Node and Bun:
//
//   node bench/parse.js
//   node_modules/.bin/bun bench/parse.js
//
// Options: --size=<bytes> (default 1 MiB), --runs=<n> (default 50),
//          --warmup=<n> (default 10), --check (exit 1 if the parse median
//          misses the 20 ms target), --write=<file> (write the generated
//          Sandboxfile there and exit, e.g. to profile the Rust parser alone).
// Needs the built addon (`node scripts/build.js`; release for real figures).
'use strict'

const { isDeepStrictEqual } = require('node:util')

const TARGET_MS = 20

const args = Object.fromEntries(
  process.argv.slice(2).map((a) => {
    const [k, v] = a.replace(/^--/, '').split('=')
    return [k, v === undefined ? true : v]
  }),
)
const size = Number(args.size ?? 1024 * 1024)
const runs = Math.max(30, Number(args.runs ?? 50))
const warmup = Number(args.warmup ?? 10)

// A deterministic pseudo-random source, so every run measures the same text.
function mulberry32(seed) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}
const random = mulberry32(0x5eed)
const pick = (items) => items[Math.floor(random() * items.length)]
const int = (lo, hi) => lo + Math.floor(random() * (hi - lo + 1))

const words = ['src', 'lib', 'app', 'api', 'worker', 'web', 'core', 'utils', 'db', 'cache', 'queue', 'auth', 'billing']
const tools = ['bun run', 'bun test', 'node', 'npm run', 'make', 'cargo test', 'python -m pytest', 'go test ./...']
const path = () => `${pick(words)}/${pick(words)}${pick(['/', '/**', '/*.ts', '.json', '/**/*.{ts,tsx}'])}`
const command = () => `${pick(tools)} ${pick(words)}${random() < 0.5 ? ` --filter ${pick(words)}` : ''}${random() < 0.3 ? `  # ${pick(words)}` : ''}`
const options = () =>
  `${random() < 0.6 ? `PORT=${int(1024, 65535)} ` : ''}${random() < 0.4 ? `WATCH=${path()} ` : ''}`
const indent = () => pick(['', '', '', '  ', '\t'])

// A realistic mix: a header, then blocks of setup, services, tests, outputs,
// logs, network rules and secrets, with comments and blank lines.
function generate(bytes) {
  const out = [
    '# Sandboxfile (generated for the parser benchmark)',
    'FROM host',
    'WORKDIR .',
    'INFER *',
    '',
    `DEV PORT=3000 WATCH=src/** bun run dev`,
    '',
  ]
  let length = out.join('\n').length
  let block = 0
  while (length < bytes) {
    const lines = [`# --- block ${block++}: ${pick(words)} ---`]
    for (let i = int(1, 4); i > 0; i--) lines.push(`${indent()}RUN ${command()}`)
    for (let i = int(0, 3); i > 0; i--) lines.push(`${indent()}SERVICE ${pick(words)}${block} ${options()}${command()}`)
    for (let i = int(0, 2); i > 0; i--) lines.push(`${indent()}TEST ${options()}${command()}`)
    for (let i = int(1, 3); i > 0; i--) lines.push(`OUTPUT ${path()}`)
    if (random() < 0.5) lines.push(`LOGS logs/${pick(words)}/*.log`)
    for (let i = int(0, 2); i > 0; i--) lines.push(`NET ${pick(['', '*.'])}${pick(words)}${block}.example.com`)
    for (let i = int(0, 2); i > 0; i--) {
      const name = `${pick(words).toUpperCase()}_${block}_KEY`
      lines.push(random() < 0.3 ? `SECRET ${name} api.example.com *.test` : `SECRET ${name}`)
    }
    lines.push('')
    const text = lines.join(random() < 0.1 ? '\r\n' : '\n') + '\n'
    out.push(text)
    length += text.length + 1
  }
  return out.join('\n')
}

function time(fn) {
  for (let i = 0; i < warmup; i++) fn()
  const samples = []
  let result
  for (let i = 0; i < runs; i++) {
    const start = performance.now()
    result = fn()
    samples.push(performance.now() - start)
  }
  samples.sort((a, b) => a - b)
  const at = (q) => samples[Math.min(samples.length - 1, Math.ceil(q * samples.length) - 1)]
  return { result, median: at(0.5), p90: at(0.9), min: samples[0] }
}

const runtime = typeof Bun !== 'undefined' ? `bun ${Bun.version}` : `node ${process.version}`
const src = generate(size)
if (typeof args.write === 'string') {
  require('node:fs').writeFileSync(args.write, src)
  process.exit(0)
}
const bytes = Buffer.byteLength(src)
const lineCount = src.split('\n').length

const { parseSandboxfile, formatSandboxfile } = require('..')
const parsed = time(() => parseSandboxfile(src))
const file = parsed.result
const formatted = time(() => formatSandboxfile(file))
if (!isDeepStrictEqual(parseSandboxfile(formatted.result), file)) {
  console.error('bench: parse(format(x)) differs from x')
  process.exit(1)
}

const mbps = (b, ms) => (b / 1e6 / (ms / 1e3)).toFixed(1)
const row = (name, r, b) =>
  `${name.padEnd(7)} median ${r.median.toFixed(2).padStart(7)} ms   p90 ${r.p90.toFixed(2).padStart(7)} ms   ` +
  `min ${r.min.toFixed(2).padStart(7)} ms   ${mbps(b, r.median).padStart(7)} MB/s`
console.log(`runtime ${runtime} (${process.platform}-${process.arch})`)
console.log(
  `input   ${bytes} bytes, ${lineCount} lines: ${file.runCommands.length} RUN, ${file.services.length} SERVICE, ` +
    `${file.tests.length} TEST, ${file.outputs.length} OUTPUT, ${file.logs.length} LOGS, ${file.net.length} NET, ` +
    `${file.secrets.length} SECRET`,
)
console.log(`runs    ${warmup} warm-up, ${runs} timed`)
console.log(row('parse', parsed, bytes))
console.log(row('format', formatted, Buffer.byteLength(formatted.result)))
const pass = parsed.median < TARGET_MS
console.log(`target  parse median < ${TARGET_MS} ms: ${pass ? 'met' : 'MISSED'}`)
if (args.check && !pass) process.exit(1)
