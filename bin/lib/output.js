// Everything bun-sandbox prints goes through a Reporter: human text (with
// colours when the stream is a terminal) or, with --json, one JSON object per
// line on stdout and nothing else there.
'use strict'
const { createColors } = require('picocolors')

/**
 * Colours for one stream. Explicit precedence, first match wins:
 * --json or --no-color → off; NO_COLOR non-empty → off; FORCE_COLOR non-empty
 * → on, unless it is "0" or "false"; otherwise on only for a TTY whose TERM is
 * not "dumb".
 */
function colorEnabled(stream, { json, noColor }, env) {
  if (json || noColor) return false
  if (env.NO_COLOR) return false
  const force = env.FORCE_COLOR
  if (force !== undefined && force !== '') return force !== '0' && force !== 'false'
  return Boolean(stream && stream.isTTY) && env.TERM !== 'dumb'
}

const NAME_COLORS = ['cyan', 'magenta', 'blue', 'green', 'yellow']

class Reporter {
  constructor({ json = false, noColor = false, verbose = false, env = process.env,
    stdout = process.stdout, stderr = process.stderr } = {}) {
    this.json = json
    this.verbose = verbose
    this.stdout = stdout
    this.stderr = stderr
    this.c = createColors(colorEnabled(stdout, { json, noColor }, env))
    this.ce = createColors(colorEnabled(stderr, { json, noColor }, env))
    this.partial = new Map() // "name\0stream" -> unfinished line
    this.nameColors = new Map()
    this.nameWidth = 0
    this.processStderrOnly = false // exec: keep stdout for the command's own output
  }

  /** One JSON event on stdout. */
  emit(event) {
    this.stdout.write(JSON.stringify(event) + '\n')
  }

  /** Plain text on stdout (human mode only). */
  print(text = '') {
    if (!this.json) this.stdout.write(text.endsWith('\n') ? text : text + '\n')
  }

  /** An informational line: stderr for humans, an `info` event in JSON. */
  info(message, extra) {
    if (this.json) this.emit({ type: 'info', message, ...extra })
    else this.stderr.write(message + '\n')
  }

  /** Progress of a long step: returns done(ok, detail) which prints the duration. */
  step(name, description) {
    const start = Date.now()
    if (this.json) this.emit({ type: 'step', step: name, status: 'start' })
    else this.stderr.write(this.ce.dim(`▸ ${description}…`) + '\n')
    return (ok = true, detail = '') => {
      const ms = Date.now() - start
      if (this.json) return this.emit({ type: 'step', step: name, status: ok ? 'done' : 'failed', ms })
      const mark = ok ? this.ce.green('✓') : this.ce.red('✗')
      this.stderr.write(`${mark} ${description}${detail ? ` ${detail}` : ''} ${this.ce.dim(formatMs(ms))}\n`)
    }
  }

  /**
   * An error or warning. `diag`: { message, file?, line?, source? }.
   * Human form, gcc style: `file:line: error: message`, then the source line.
   * `stream` is 'stdout' (validate's own output) or 'stderr' (everything else).
   */
  diagnostic(severity, diag, stream = 'stderr') {
    if (this.json) {
      const event = { type: severity, message: diag.message }
      if (diag.path || diag.file) event.file = diag.path || diag.file // absolute in JSON
      for (const k of ['line', 'directive', 'source', 'code']) {
        if (diag[k] !== undefined) event[k] = diag[k]
      }
      return this.emit(event)
    }
    const out = stream === 'stdout' ? this.stdout : this.stderr
    const c = stream === 'stdout' ? this.c : this.ce
    const where = diag.file ? `${diag.file}${diag.line ? `:${diag.line}` : ''}: ` : ''
    const label = severity === 'error' ? c.red(c.bold('error:')) : c.yellow(c.bold('warning:'))
    let text = `${c.bold(where)}${label} ${diag.message}\n`
    if (diag.line && diag.source !== undefined) {
      const gutter = String(diag.line)
      const pad = ' '.repeat(gutter.length)
      const lead = diag.source.match(/^[ \t]*/)[0]
      const token = diag.source.slice(lead.length).split(/[ \t]/)[0] || ' '
      text += `${c.dim(` ${gutter} |`)} ${diag.source}\n`
      text += `${c.dim(` ${pad} |`)} ${lead}${c.red('^'.repeat(token.length))}\n`
    }
    out.write(text)
  }

  /** A failure message on stderr (or an `error` event), for the final word. */
  fail(message, extra) {
    if (this.json) this.emit({ type: 'error', message, ...extra })
    else this.stderr.write(`${this.ce.red(this.ce.bold('error:'))} ${message}\n`)
  }

  /** Stack traces and other detail, only with -v. */
  debug(text) {
    if (!this.verbose) return
    if (this.json) this.emit({ type: 'debug', message: text })
    else this.stderr.write(this.ce.dim(text) + '\n')
  }

  /** Reserve the prefix width so the columns line up. */
  knowNames(names) {
    for (const n of names) this.nameWidth = Math.max(this.nameWidth, n.length)
  }

  /** Output of a sandboxed process: each line prefixed with the process name. */
  processOutput(name, stream, data) {
    const key = `${name}\0${stream}`
    const lines = ((this.partial.get(key) || '') + data).split('\n')
    this.partial.set(key, lines.pop())
    for (const line of lines) this.processLine(name, stream, line)
  }

  /** Flush what is left of a process's output (at its exit). */
  flushProcess(name) {
    for (const stream of ['stdout', 'stderr']) {
      const key = `${name}\0${stream}`
      const rest = this.partial.get(key)
      if (rest) this.processLine(name, stream, rest)
      this.partial.delete(key)
    }
  }

  /** A sandboxed process ended. */
  processExit(name, code) {
    this.flushProcess(name)
    if (this.json) return this.emit({ type: 'exit', name, code })
    if (code === 0 && !this.verbose) return
    const text = code === null ? `${name} was killed` : `${name} exited with code ${code}`
    this.stderr.write((code === 0 ? this.ce.dim(text) : this.ce.yellow(text)) + '\n')
  }

  /** Something the sandbox refused (a NET host, a file, a limit). */
  violation(event) {
    if (this.json) return this.emit({ type: 'violation', ...event })
    const what = event.host ? `${event.kind} ${event.host}` : event.kind
    this.stderr.write(`${this.ce.yellow(this.ce.bold('blocked:'))} ${what}: ${event.detail}\n`)
  }

  processLine(name, stream, line) {
    if (this.json) return this.emit({ type: 'output', name, stream, line })
    const toStderr = stream === 'stderr' || this.processStderrOnly
    const c = toStderr ? this.ce : this.c
    if (!this.nameColors.has(name)) {
      this.nameColors.set(name, NAME_COLORS[this.nameColors.size % NAME_COLORS.length])
    }
    this.knowNames([name])
    const prefix = c[this.nameColors.get(name)](name.padEnd(this.nameWidth) + ' |')
    const out = toStderr ? this.stderr : this.stdout
    out.write(`${prefix} ${out.isTTY ? terminalSafe(line) : line}\n`)
  }
}

/** Control characters, other than tab, and the C1 range. */
const CONTROL = /[\x00-\x08\x0a-\x1f\x7f-\x9f]/
/** A colour or style (SGR): the one escape sequence passed to a terminal. */
const SGR = /\x1b\[[0-9;:]*m/y

/**
 * A sandboxed process's line as it may reach the user's terminal. Its escape
 * sequences must not drive the terminal: OSC 52 writes the clipboard, others
 * set the title, move the cursor over bun-sandbox's own lines, or make the
 * terminal answer into its input. Colours pass; every other control
 * character is shown as `cat -v` shows it (ESC as ^[), and the \r of a CRLF
 * line end is dropped.
 */
function terminalSafe(line) {
  if (line.endsWith('\r')) line = line.slice(0, -1)
  if (!CONTROL.test(line)) return line
  let out = ''
  for (let i = 0; i < line.length; i++) {
    const ch = line.charCodeAt(i)
    if (ch === 0x1b) {
      SGR.lastIndex = i
      const sgr = SGR.exec(line)
      if (sgr) {
        out += sgr[0]
        i += sgr[0].length - 1
        continue
      }
    }
    if ((ch < 0x20 && ch !== 0x09) || ch === 0x7f) out += '^' + String.fromCharCode(ch ^ 0x40)
    else if (ch >= 0x80 && ch <= 0x9f) out += 'M-^' + String.fromCharCode((ch - 0x80) ^ 0x40)
    else out += line[i]
  }
  return out
}

function formatMs(ms) {
  return ms < 1000 ? `${ms}ms` : `${(ms / 1000).toFixed(1)}s`
}

function plural(n, word, words = word + 's') {
  return `${n} ${n === 1 ? word : words}`
}

module.exports = { Reporter, colorEnabled, plural, terminalSafe }
