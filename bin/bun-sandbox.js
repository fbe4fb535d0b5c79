#!/usr/bin/env node
// bun-sandbox: the command line (SPEC §5). Runs under Node 18+ and Bun.
//
//   bun-sandbox [run] [Sandboxfile]        full lifecycle; keeps services up until Ctrl-C
//   bun-sandbox test [Sandboxfile]         setup, services, tests; exit 0 iff all pass
//   bun-sandbox exec [Sandboxfile] -- CMD  one command in a fresh sandbox
//   bun-sandbox infer [dir]                print an inferred Sandboxfile (-o DIR writes it)
//   bun-sandbox validate [Sandboxfile]     errors, warnings and a summary
//   bun-sandbox extract [Sandboxfile] -o DIR
//
// Exit codes: 0 success, 1 failure, 2 usage error.
'use strict'
const fs = require('node:fs')
const path = require('node:path')
const { UsageError, optionName, OPTIONS, parseArgv, parseEnvPairs } = require('./lib/args')
const { COMMANDS, acceptedOptions, commandHelp, globalHelp } = require('./lib/commands')
const { Reporter } = require('./lib/output')
const { CliError } = require('./lib/sandboxfile')

const VERSION = require('../package.json').version

/** The addon, loaded only by commands that need it (help and --version do not). */
function loadApi() {
  try {
    return require('../index.js')
  } catch (err) {
    throw new CliError(`cannot load the bun-sandbox native addon: ${err.message.split('\n')[0]}`)
  }
}

/** Levenshtein distance, for "did you mean" on a mistyped command. */
function distance(a, b) {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j)
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0]
    row[0] = i
    for (let j = 1; j <= b.length; j++) {
      const cur = row[j]
      row[j] = Math.min(row[j] + 1, row[j - 1] + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1))
      prev = cur
    }
  }
  return row[b.length]
}

/**
 * Picks the command from the positionals. A first word that is not a command
 * is the Sandboxfile of an implicit `run` when it exists on disk; a bare word
 * that does not exist is an unknown command (usage error).
 */
function pickCommand(positionals, cwd) {
  const [first, ...others] = positionals
  if (first === 'help') return { name: 'help', explicit: true, positionals: others }
  if (first !== undefined && Object.hasOwn(COMMANDS, first)) return { name: first, explicit: true, positionals: others }
  if (first !== undefined && /^[a-z][a-z-]*$/.test(first) && !fs.existsSync(path.resolve(cwd, first))) {
    const near = Object.keys(COMMANDS).find((n) => distance(n, first) <= 2)
    throw new UsageError(`unknown command '${first}'${near ? ` (did you mean '${near}'?)` : ''}`)
  }
  return { name: 'run', explicit: false, positionals }
}

/** Checks the parsed arguments against what the command takes. */
function checkUsage(name, parsed, positionals) {
  const cmd = COMMANDS[name]
  const accepted = acceptedOptions(name)
  for (const { opt, spelled } of parsed.seen) {
    if (!accepted.has(opt.key)) throw new UsageError(`${name} does not take ${spelled}`, name)
  }
  if (positionals.length > 1) throw new UsageError(`${name} takes at most one ${cmd.arg[0]} (got: ${positionals.join(' ')})`, name)
  if (cmd.rest && (!parsed.rest || parsed.rest.length === 0)) {
    throw new UsageError(`${name} needs a command after --, e.g. bun-sandbox exec -- bun test`, name)
  }
  if (!cmd.rest && parsed.rest) throw new UsageError(`${name} does not take a command after --`, name)
  for (const key of cmd.requires || []) {
    if (!parsed.options[key]) throw new UsageError(`${name} requires ${optionName(OPTIONS.find((o) => o.key === key))}`, name)
  }
}

async function main(argv, { cwd = process.cwd(), env = process.env } = {}) {
  // Until the arguments parse, guess --json so even a usage error comes out as JSON.
  const beforeDashes = argv.includes('--') ? argv.slice(0, argv.indexOf('--')) : argv
  let reporter = new Reporter({ json: beforeDashes.includes('--json'), env })
  let command
  try {
    const parsed = parseArgv(argv)
    const { options } = parsed
    reporter = new Reporter({ json: options.json, noColor: options.noColor, verbose: options.verbose, env })
    if (options.version) {
      if (reporter.json) reporter.emit({ type: 'version', version: VERSION })
      else process.stdout.write(`${VERSION}\n`)
      return 0
    }
    const picked = pickCommand(parsed.positionals, cwd)
    if (picked.name === 'help' || options.help) {
      const topic = picked.name === 'help' ? picked.positionals[0] : picked.explicit ? picked.name : undefined
      if (topic !== undefined && !Object.hasOwn(COMMANDS, topic)) throw new UsageError(`unknown command '${topic}'`)
      const text = topic ? commandHelp(topic) : globalHelp(VERSION)
      if (reporter.json) reporter.emit({ type: 'help', command: topic || null, text })
      else process.stdout.write(text)
      return 0
    }
    command = picked.name
    checkUsage(command, parsed, picked.positionals)
    const ctx = {
      api: loadApi,
      cwd,
      options,
      env: parseEnvPairs(options.env),
      positional: picked.positionals[0],
      rest: parsed.rest || [],
      reporter,
      exitNow: false,
    }
    const code = await COMMANDS[command].handler(ctx)
    return ctx.exitNow ? { code, exitNow: true } : code
  } catch (err) {
    if (err instanceof UsageError) {
      const topic = err.command || command || beforeDashes.find((a) => Object.hasOwn(COMMANDS, a))
      const help = topic ? `bun-sandbox ${topic} --help` : 'bun-sandbox --help'
      reporter.fail(err.message, reporter.json ? { code: 'usage' } : undefined)
      if (!reporter.json) process.stderr.write(`Run '${help}' for usage.\n`)
      return 2
    }
    if (err instanceof CliError) {
      if (!err.reported) reporter.fail(err.message)
      return err.exitCode
    }
    // Anything else (an error from the API, a bug): its message, without the
    // stack (that only with -v). The whole message: the runtime's can go on
    // after the first line (e.g. "...; its last output:\n<the process's tail>").
    const message = String(err && err.message ? err.message : err).trimEnd()
    reporter.fail(message, err && err.code ? { code: err.code } : undefined)
    reporter.debug(err && err.stack ? err.stack : String(err))
    return 1
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).then((result) => {
    if (typeof result === 'object') process.exit(result.code)
    process.exitCode = result
  })
}

module.exports = { main }
