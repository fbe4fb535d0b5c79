// The command table, help texts, and the commands that start no sandbox
// (validate, infer). run/test/exec/extract live in lifecycle.js.
'use strict'
const fs = require('node:fs')
const path = require('node:path')
const { OPTIONS } = require('./args')
const { CliError, check, counts, displayPath, load, summaryText } = require('./sandboxfile')
const { plural } = require('./output')
const lifecycle = require('./lifecycle')

const SANDBOXFILE_ARG = ['Sandboxfile', 'the file, or a directory holding one (default: ./Sandboxfile)']

// Options every command takes; each command lists the others it accepts, with
// the description of what they mean for it.
const COMMON = ['help', 'verbose', 'json', 'noColor', 'version']
const COMMON_IN_HELP = { help: 'show this help', verbose: null, json: null, noColor: null }

const COMMANDS = {
  run: {
    usage: '[run] [Sandboxfile] [options]',
    summary: 'full lifecycle; keeps services up until Ctrl-C',
    description: 'Runs setup (RUN), starts the services and the dev server, runs the tests, then keeps\n' +
      'everything up until Ctrl-C, which stops the sandbox cleanly.',
    arg: SANDBOXFILE_ARG,
    options: {
      watch: 're-run the tests when a file in WORKDIR changes',
      output: 'copy OUTPUT changes into DIR when the sandbox stops',
      env: null,
    },
    handler: lifecycle.run,
  },
  test: {
    usage: 'test [Sandboxfile] [options]',
    summary: 'setup, services, tests; exit 0 iff all pass',
    description: 'Runs setup (RUN), starts the services and runs every TEST. Exit code 0 if and only if all\n' +
      'tests pass (a file without TEST lines fails: nothing was tested).',
    arg: SANDBOXFILE_ARG,
    options: {
      watch: 'keep the sandbox and re-run the tests when a file in WORKDIR changes',
      output: 'copy OUTPUT changes into DIR when the sandbox stops',
      env: null,
    },
    handler: lifecycle.test,
  },
  exec: {
    usage: 'exec [Sandboxfile] [options] -- CMD [ARGS...]',
    summary: 'one command in a fresh sandbox',
    description: 'Runs setup (RUN) and the services in a fresh sandbox, then CMD; exits with its exit code.\n' +
      'CMD\'s output goes to stdout/stderr as is; setup and services print on stderr. A single\n' +
      'argument after -- is a shell command line (e.g. -- "ls | wc -l"), several are an argv.',
    arg: SANDBOXFILE_ARG,
    rest: true,
    options: { output: 'copy OUTPUT changes into DIR after the command', env: null },
    handler: lifecycle.exec,
  },
  infer: {
    usage: 'infer [dir] [options]',
    summary: 'print an inferred Sandboxfile (-o DIR writes it)',
    description: 'Looks at the project in dir (default: the current directory) and prints a Sandboxfile for it.',
    arg: ['dir', 'the project directory (default: .)'],
    options: {
      output: 'write DIR/Sandboxfile instead of printing it (refuses to overwrite one)',
      force: 'with -o, overwrite an existing Sandboxfile',
    },
    handler: infer,
  },
  validate: {
    usage: 'validate [Sandboxfile] [options]',
    summary: 'errors, warnings and a summary',
    description: 'Checks a Sandboxfile without running anything: syntax, the rules of validateSandboxfile,\n' +
      'and that WORKDIR (and a FROM path) exist relative to the Sandboxfile\'s own directory.\n' +
      'Exit code 0 when there are no errors (warnings are allowed), 1 otherwise.',
    arg: SANDBOXFILE_ARG,
    options: {},
    handler: validate,
  },
  extract: {
    usage: 'extract [Sandboxfile] -o DIR [options]',
    summary: 'run setup, then copy the OUTPUT files into DIR',
    description: 'Runs setup (RUN) in a fresh sandbox and copies the changes under OUTPUT paths into DIR.',
    arg: SANDBOXFILE_ARG,
    options: { output: 'where to write the OUTPUT files (required)', env: null },
    requires: ['output'],
    handler: lifecycle.extract,
  },
}

function optionLines(entries) {
  const rows = entries.map(([opt, desc]) => {
    const flag = (opt.short ? `-${opt.short}, ` : '    ') + `--${opt.long}` + (opt.value ? ` ${opt.value}` : '')
    return [flag, desc || opt.desc]
  })
  const width = Math.max(...rows.map(([f]) => f.length))
  return rows.map(([f, d]) => `  ${f.padEnd(width)}  ${d}`).join('\n')
}

function globalHelp(version) {
  const names = Object.keys(COMMANDS)
  const usages = names.map((n) => [`bun-sandbox ${COMMANDS[n].usage.replace(' [options]', '')}`, COMMANDS[n].summary])
  const width = Math.max(...usages.map(([u]) => u.length))
  return `bun-sandbox ${version}: isolated, disposable sandboxes for AI coding agents, declared in a Sandboxfile

Usage:
${usages.map(([u, s]) => `  ${u.padEnd(width)}  ${s}`).join('\n')}

Options:
${optionLines(OPTIONS.map((o) => [o, null]))}

Environment: NO_COLOR=1 disables colours; FORCE_COLOR=1 forces them (NO_COLOR wins).
Exit codes: 0 success, 1 failure, 2 usage error.
Run 'bun-sandbox <command> --help' for the details of a command.
`
}

function commandHelp(name) {
  const cmd = COMMANDS[name]
  const own = Object.entries(cmd.options).map(([key, desc]) => [OPTIONS.find((o) => o.key === key), desc])
  const common = Object.entries(COMMON_IN_HELP).map(([key, desc]) => [OPTIONS.find((o) => o.key === key), desc])
  const args = [cmd.arg, ...(cmd.rest ? [['CMD', 'the command to run inside the sandbox, after --']] : [])]
  const width = Math.max(...args.map(([a]) => a.length))
  return `Usage: bun-sandbox ${cmd.usage}

${cmd.description}

Arguments:
${args.map(([a, d]) => `  ${a.padEnd(width)}  ${d}`).join('\n')}

Options:
${optionLines([...own, ...common])}
`
}

/** Options a command accepts (by key). */
function acceptedOptions(name) {
  return new Set([...COMMON, ...Object.keys(COMMANDS[name].options)])
}

async function validate(ctx) {
  const r = ctx.reporter
  const api = ctx.api()
  const loaded = load(api, ctx.positional, ctx.cwd)
  const summary = (valid, errors, warnings) => {
    if (r.json) {
      const event = { type: 'summary', file: loaded.file, valid, errors, warnings }
      if (loaded.config) Object.assign(event, { counts: counts(loaded.config), config: loaded.config })
      return r.emit(event)
    }
    const c = r.c
    const tally = [errors && plural(errors, 'error'), warnings && plural(warnings, 'warning')].filter(Boolean).join(', ')
    const state = valid ? c.green(c.bold('valid')) : c.red(c.bold('invalid'))
    const detail = loaded.config ? summaryText(loaded.config) : ''
    r.print(`${loaded.display}: ${state}${detail ? ` (${detail})` : ''}${tally ? `; ${tally}` : ''}`)
  }
  if (loaded.parseError) {
    r.diagnostic('error', loaded.parseError, 'stdout')
    summary(false, 1, 0)
    return 1
  }
  const { errors, warnings } = check(api, loaded)
  for (const e of errors) r.diagnostic('error', e, 'stdout')
  for (const w of warnings) r.diagnostic('warning', w, 'stdout')
  summary(errors.length === 0, errors.length, warnings.length)
  return errors.length ? 1 : 0
}

async function infer(ctx) {
  const r = ctx.reporter
  const api = ctx.api()
  const dir = path.resolve(ctx.cwd, ctx.positional || '.')
  if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) {
    throw new CliError(`cannot infer: ${ctx.positional || dir} is not a directory`)
  }
  let target
  if (ctx.options.output) {
    const outDir = path.resolve(ctx.cwd, ctx.options.output)
    target = path.join(outDir, 'Sandboxfile')
    if (fs.existsSync(outDir) && !fs.statSync(outDir).isDirectory()) {
      throw new CliError(`cannot write ${ctx.options.output}/Sandboxfile: ${ctx.options.output} is not a directory`)
    }
    if (fs.existsSync(target) && !ctx.options.force) {
      throw new CliError(`${displayPath(target, ctx.cwd)} already exists; not overwriting it (use --force to replace it)`)
    }
  }
  const config = await api.inferSandboxfile(dir)
  const text = api.formatSandboxfile(config)
  if (!target) {
    if (r.json) r.emit({ type: 'sandboxfile', config, text })
    else process.stdout.write(text)
    return 0
  }
  fs.mkdirSync(path.dirname(target), { recursive: true })
  try {
    fs.writeFileSync(target, text, { flag: ctx.options.force ? 'w' : 'wx' })
  } catch (err) {
    if (err.code === 'EEXIST') throw new CliError(`${displayPath(target, ctx.cwd)} already exists; not overwriting it (use --force to replace it)`)
    throw new CliError(`cannot write ${displayPath(target, ctx.cwd)}: ${err.code || err.message}`)
  }
  if (r.json) r.emit({ type: 'sandboxfile', config, text, path: target })
  else process.stderr.write(`${text}${text.endsWith('\n') ? '' : '\n'}${r.ce.green('wrote')} ${displayPath(target, ctx.cwd)}\n`)
  return 0
}

module.exports = { COMMANDS, acceptedOptions, commandHelp, globalHelp }
