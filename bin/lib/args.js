// Command-line argument parsing for bun-sandbox.
//
// Hand-rolled rather than node:util parseArgs: parseArgs is missing from
// Node 18.0-18.2 and its error texts differ between Node and Bun, while the
// CLI promises the same messages (and exit code 2) everywhere. Supported forms:
// `--name`, `--name=value`, `--name value`, `-x`, `-xVALUE`, `-x VALUE`,
// grouped boolean short flags (`-vw`), `--no-color`, and `--` which ends the
// options (everything after it is the command for `exec`).
'use strict'

class UsageError extends Error {
  constructor(message, command) {
    super(message)
    this.name = 'UsageError'
    this.command = command
  }
}

// Every option the CLI knows. `key` is the property on the parsed result.
const OPTIONS = [
  { long: 'help', short: 'h', key: 'help', desc: 'show help (also per command: bun-sandbox validate --help)' },
  { long: 'version', key: 'version', desc: 'print the version' },
  { long: 'verbose', short: 'v', key: 'verbose', desc: 'more detail: runtime messages, stack traces' },
  { long: 'json', key: 'json', desc: 'machine-readable events on stdout, one JSON object per line' },
  { long: 'no-color', key: 'noColor', desc: 'no colours (also NO_COLOR=1; FORCE_COLOR=1 forces them)' },
  { long: 'watch', short: 'w', key: 'watch', desc: 'keep going and re-run the tests when files in WORKDIR change' },
  { long: 'output', short: 'o', key: 'output', value: 'DIR', desc: 'directory to write to' },
  { long: 'env', short: 'e', key: 'env', value: 'K=V', multiple: true, desc: 'set an environment variable inside the sandbox (repeatable)' },
  { long: 'force', key: 'force', desc: 'overwrite an existing Sandboxfile' },
]
const byLong = new Map(OPTIONS.map((o) => [o.long, o]))
const byShort = new Map(OPTIONS.filter((o) => o.short).map((o) => [o.short, o]))

function optionName(opt) {
  return opt.short ? `-${opt.short}/--${opt.long}` : `--${opt.long}`
}

/**
 * Splits argv into { options, positionals, rest } where rest is what follows
 * `--` (or null when there is no `--`). Throws UsageError on unknown options or
 * a missing value. Which options a command accepts is checked later.
 */
function parseArgv(argv) {
  const options = { env: [] }
  const positionals = []
  const seen = []
  let rest = null
  const set = (opt, value, spelled) => {
    seen.push({ opt, spelled })
    if (opt.multiple) options[opt.key].push(value)
    else options[opt.key] = opt.value ? value : true
  }
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]
    const takeValue = (opt, inline, spelled) => {
      if (!opt.value) {
        if (inline !== undefined) throw new UsageError(`option ${spelled} does not take a value`)
        return set(opt, true, spelled)
      }
      if (inline !== undefined) return set(opt, inline, spelled)
      if (i + 1 >= argv.length || argv[i + 1] === '--') {
        throw new UsageError(`option ${optionName(opt)} needs a value (${opt.value})`)
      }
      set(opt, argv[++i], spelled)
    }
    if (arg === '--') {
      rest = argv.slice(i + 1)
      break
    }
    if (arg.startsWith('--')) {
      const eq = arg.indexOf('=')
      const name = eq === -1 ? arg.slice(2) : arg.slice(2, eq)
      const opt = byLong.get(name)
      if (!opt) throw new UsageError(`unknown option --${name}`)
      takeValue(opt, eq === -1 ? undefined : arg.slice(eq + 1), `--${name}`)
    } else if (arg.startsWith('-') && arg.length > 1) {
      // -x, -xVALUE, or a group of boolean flags -vw
      for (let j = 1; j < arg.length; j++) {
        const opt = byShort.get(arg[j])
        if (!opt) throw new UsageError(`unknown option -${arg[j]}`)
        if (opt.value) {
          takeValue(opt, j + 1 < arg.length ? arg.slice(j + 1) : undefined, `-${arg[j]}`)
          break
        }
        set(opt, true, `-${arg[j]}`)
      }
    } else {
      positionals.push(arg)
    }
  }
  return { options, positionals, rest, seen }
}

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/

/** Turns the `-e K=V` list into an object; UsageError on anything else. */
function parseEnvPairs(pairs) {
  const env = {}
  for (const pair of pairs) {
    const eq = pair.indexOf('=')
    const key = eq === -1 ? pair : pair.slice(0, eq)
    if (eq === -1 || !ENV_NAME.test(key)) {
      throw new UsageError(`bad --env value '${pair}': expected K=V with K a variable name ([A-Za-z_][A-Za-z0-9_]*)`)
    }
    env[key] = pair.slice(eq + 1)
  }
  return env
}

module.exports = { OPTIONS, UsageError, optionName, parseArgv, parseEnvPairs }
