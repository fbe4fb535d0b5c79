// Finding, reading, parsing and checking a Sandboxfile for the CLI.
'use strict'
const fs = require('node:fs')
const path = require('node:path')
const { plural } = require('./output')

/** An error the CLI reports as-is, with an exit code (1 by default). */
class CliError extends Error {
  constructor(message, { exitCode = 1, reported = false } = {}) {
    super(message)
    this.name = 'CliError'
    this.exitCode = exitCode
    this.reported = reported // already printed: only the exit code remains
  }
}

/** How to show a path to the user: relative to cwd when below it. */
function displayPath(abs, cwd) {
  const rel = path.relative(cwd, abs)
  if (rel === '') return '.'
  return rel && !rel.startsWith('..') && !path.isAbsolute(rel) ? rel : abs
}

/** The Sandboxfile argument: default ./Sandboxfile; a directory means <dir>/Sandboxfile. */
function locate(arg, cwd) {
  let file = path.resolve(cwd, arg || 'Sandboxfile')
  try {
    if (fs.statSync(file).isDirectory()) file = path.join(file, 'Sandboxfile')
  } catch {
    // missing: reported when read
  }
  const dir = path.dirname(file)
  return { file, display: displayPath(file, cwd), dir, dirDisplay: displayPath(dir, cwd) }
}

function readText(loc) {
  try {
    return fs.readFileSync(loc.file, 'utf8')
  } catch (err) {
    if (err.code === 'ENOENT') {
      throw new CliError(`no Sandboxfile at ${loc.display} (create one with: bun-sandbox infer ${loc.dirDisplay === '.' ? '' : loc.dirDisplay + ' '}-o ${loc.dirDisplay})`)
    }
    const reason = { EACCES: 'permission denied', EISDIR: 'is a directory' }[err.code] || err.message
    throw new CliError(`cannot read ${loc.display}: ${reason}`)
  }
}

/** The raw text of line n (1-based), without its line ending. */
function sourceLine(text, n) {
  const line = text.split('\n')[n - 1]
  return line === undefined ? undefined : line.replace(/\r$/, '')
}

/** Line number of the first line whose directive is `name` (SPEC §1.1 lexing). */
function directiveLine(text, name) {
  const lines = text.split('\n')
  for (let i = 0; i < lines.length; i++) {
    const t = lines[i].replace(/^[ \t\r]+|[ \t\r]+$/g, '')
    if (t && !t.startsWith('#') && t.split(/[ \t]/)[0] === name) return i + 1
  }
  return undefined
}

/**
 * Reads and parses. Returns { ...loc, text, config } or, for a file that does
 * not parse, { ...loc, text, parseError } where parseError is a diagnostic.
 */
function load(api, arg, cwd) {
  const loc = locate(arg, cwd)
  const text = readText(loc)
  try {
    return { ...loc, text, config: api.parseSandboxfile(text) }
  } catch (err) {
    if (err.code !== 'ERR_SANDBOXFILE_PARSE' && typeof err.line !== 'number') throw err
    const message = String(err.message).replace(/^Line \d+: /, '')
    return {
      ...loc,
      text,
      parseError: {
        message, file: loc.display, path: loc.file, line: err.line, directive: err.directive,
        source: sourceLine(text, err.line), code: 'ERR_SANDBOXFILE_PARSE',
      },
    }
  }
}

function statKind(p) {
  try {
    return fs.statSync(p).isDirectory() ? 'dir' : 'file'
  } catch {
    return 'missing'
  }
}

const looksLikePath = (s) => s.startsWith('/') || s.startsWith('./') || s.startsWith('../') || s === '.' || s === '..'

/**
 * Checks only the CLI can make, because they need the filesystem: WORKDIR and a
 * FROM path resolve against the Sandboxfile's own directory (not the cwd).
 */
function filesystemChecks(loaded, apiErrors) {
  const { config, dir, text, display } = loaded
  const errors = []
  const warnings = []
  const at = (directive) => {
    const line = directiveLine(text, directive)
    return { file: display, path: loaded.file, line, source: line && sourceLine(text, line) }
  }
  const workdir = config.workdir === undefined ? '.' : config.workdir
  const wd = path.resolve(dir, workdir)
  const wdKind = statKind(wd)
  if (wdKind === 'missing') errors.push({ ...at('WORKDIR'), message: `WORKDIR ${workdir} does not exist (resolved to ${wd})` })
  else if (wdKind === 'file') errors.push({ ...at('WORKDIR'), message: `WORKDIR ${workdir} is not a directory (resolved to ${wd})` })

  const from = config.from
  if (from !== undefined && from !== 'host') {
    const root = path.resolve(dir, from)
    const kind = statKind(root)
    if (kind === 'dir') {
      if (statKind(path.join(root, 'usr')) === 'missing' && statKind(path.join(root, 'bin')) === 'missing') {
        warnings.push({ ...at('FROM'), message: `FROM ${from} does not look like a root filesystem (no bin/ or usr/ in ${root})` })
      }
    } else if (looksLikePath(from) || kind === 'file') {
      const what = kind === 'file' ? 'is not a directory' : 'does not exist'
      errors.push({ ...at('FROM'), message: `FROM ${from} ${what} (resolved to ${root})` })
    } else if (!apiErrors.some((e) => e.includes('FROM'))) {
      errors.push({
        ...at('FROM'),
        message: `FROM ${from} is not supported: use FROM host, or FROM <path to a directory holding a root filesystem>`,
      })
    }
  }
  return { errors, warnings }
}

/** validateSandboxfile plus the filesystem checks, as diagnostics. */
function check(api, loaded) {
  const result = api.validateSandboxfile(loaded.config)
  const fsResult = filesystemChecks(loaded, result.errors)
  const plain = (message) => ({ message, file: loaded.display, path: loaded.file })
  return {
    errors: [...result.errors.map(plain), ...fsResult.errors],
    warnings: [...result.warnings.map(plain), ...fsResult.warnings],
  }
}

/** Counts for the one-line summary, e.g. "2 RUN, dev on :3000, 1 service, ...". */
function counts(config) {
  return {
    from: config.from === undefined ? 'host' : config.from,
    run: config.runCommands.length,
    dev: config.dev ? (config.dev.port === undefined ? true : config.dev.port) : false,
    services: config.services.length,
    tests: config.tests.length,
    outputs: config.outputs.length,
    logs: config.logs.length,
    net: config.net.length,
    secrets: config.secrets.length,
    infer: config.infer !== undefined,
  }
}

function summaryText(config) {
  const n = counts(config)
  const parts = []
  if (n.from !== 'host') parts.push(`FROM ${n.from}`)
  if (n.run) parts.push(`${n.run} RUN`)
  if (n.dev !== false) parts.push(n.dev === true ? 'dev' : `dev on :${n.dev}`)
  if (n.services) parts.push(plural(n.services, 'service'))
  if (n.tests) parts.push(plural(n.tests, 'test'))
  if (n.outputs) parts.push(plural(n.outputs, 'output'))
  if (n.logs) parts.push(plural(n.logs, 'log pattern'))
  parts.push(n.net ? plural(n.net, 'NET host') : 'no network')
  if (n.secrets) parts.push(plural(n.secrets, 'secret'))
  if (n.infer) parts.push(`INFER ${config.infer}`)
  return parts.join(', ')
}

module.exports = { CliError, check, counts, displayPath, load, locate, summaryText }
