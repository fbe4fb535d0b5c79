// run, test, exec and extract: the commands that start a sandbox.
//
// Each one parses and checks the Sandboxfile first (so a broken file gets its
// real error), then drives the public API (new Sandbox(...)). Whatever the API
// throws — e.g. that the isolation runtime is not available — is reported as
// the command's error, so these commands need no change when the runtime lands.
'use strict'
const fs = require('node:fs')
const path = require('node:path')
const { CliError, check, load } = require('./sandboxfile')
const { plural } = require('./output')
const { watchDir } = require('./watch')

/** Parse + validate, printing diagnostics to stderr; throws when not runnable. */
function prepare(ctx) {
  const r = ctx.reporter
  const loaded = load(ctx.api(), ctx.positional, ctx.cwd)
  if (loaded.parseError) {
    r.diagnostic('error', loaded.parseError)
    throw new CliError('parse error', { reported: true })
  }
  const { errors, warnings } = check(ctx.api(), loaded)
  for (const w of warnings) r.diagnostic('warning', w)
  for (const e of errors) r.diagnostic('error', e)
  if (errors.length) {
    r.fail(`${loaded.display} is invalid (${plural(errors.length, 'error')}); nothing was started`)
    throw new CliError('invalid', { reported: true })
  }
  return loaded
}

function processNames(config) {
  return [
    ...(config.dev ? [config.dev.name || 'dev'] : []),
    ...config.services.map((s) => s.name),
    ...config.tests.map((t, i) => t.name || `test-${i}`),
  ]
}

function sandboxOptions(ctx, loaded, { show = () => true, extractDir } = {}) {
  const r = ctx.reporter
  r.knowNames(processNames(loaded.config))
  const options = {
    cwd: loaded.dir, // WORKDIR resolves against the Sandboxfile's directory
    env: ctx.env,
    verbose: Boolean(ctx.options.verbose),
    onStdout: (name, data) => show(name) && r.processOutput(name, 'stdout', data),
    onStderr: (name, data) => show(name) && r.processOutput(name, 'stderr', data),
    onExit: (name, code) => show(name) && r.processExit(name, code),
    onViolation: (event) => r.violation(event),
    // One sandbox per run: a spare for a next one would only be thrown away.
    spare: false,
  }
  if (extractDir) options.extractDir = extractDir
  return options
}

/** -o DIR, resolved against the cwd; created only when something is written. */
function outputDir(ctx) {
  if (!ctx.options.output) return undefined
  const dir = path.resolve(ctx.cwd, ctx.options.output)
  if (fs.existsSync(dir) && !fs.statSync(dir).isDirectory()) {
    throw new CliError(`output ${ctx.options.output} exists and is not a directory`)
  }
  return dir
}

function ensureDir(dir) {
  if (!dir) return
  try {
    fs.mkdirSync(dir, { recursive: true })
  } catch (err) {
    throw new CliError(`cannot create output directory ${dir}: ${err.code || err.message}`)
  }
}

/**
 * Ctrl-C / SIGTERM: stop the sandbox cleanly (a second Ctrl-C exits at once).
 * `signalled` resolves with the exit code: `finalCode()` when the command was
 * waiting for Ctrl-C as its normal end, else 130 / 143.
 */
function trapSignals(ctx, sandbox) {
  const trap = { finalCode: null, signal: null }
  let resolve
  trap.signalled = new Promise((res) => (resolve = res))
  const handler = (signal) => {
    if (trap.signal) process.exit(130)
    trap.signal = signal
    ctx.exitNow = true // do not wait for stray handles once stopped
    ctx.reporter.info('stopping the sandbox…')
    const code = trap.finalCode ? trap.finalCode() : signal === 'SIGINT' ? 130 : 143
    Promise.resolve().then(() => sandbox.stop()).catch(() => {}).then(() => resolve(code))
  }
  process.on('SIGINT', handler)
  process.on('SIGTERM', handler)
  // Waiting for Ctrl-C: a pending promise alone does not keep the process alive.
  let keepAlive = null
  trap.untilSignal = (finalCode) => {
    trap.finalCode = finalCode
    keepAlive = keepAlive || setInterval(() => {}, 1 << 30)
    return trap.signalled
  }
  trap.dispose = () => {
    clearInterval(keepAlive)
    process.off('SIGINT', handler)
    process.off('SIGTERM', handler)
  }
  return trap
}

/** Creates the sandbox, runs body(sandbox, trap), always stops it. */
async function withSandbox(ctx, loaded, opts, body) {
  const api = ctx.api()
  const sandbox = new api.Sandbox(loaded.config, sandboxOptions(ctx, loaded, opts))
  const trap = trapSignals(ctx, sandbox)
  const work = Promise.resolve().then(() => body(sandbox, trap))
  work.catch(() => {}) // after a signal its outcome no longer matters
  try {
    return await Promise.race([work, trap.signalled])
  } finally {
    trap.dispose()
    await sandbox.stop()
  }
}

async function setup(ctx, sandbox, config) {
  const r = ctx.reporter
  sandbox.loadSecrets()
  const done = r.step('setup', `setup (${plural(config.runCommands.length, 'RUN command')})`)
  const ok = await sandbox.runSetup()
  done(ok)
  if (!ok) r.fail('setup failed: a RUN command exited with an error')
  return ok
}

async function dev(ctx, sandbox, config) {
  if (!config.dev) return
  const name = config.dev.name || 'dev'
  const done = ctx.reporter.step('dev', `starting ${name}${config.dev.port ? ` (port ${config.dev.port})` : ''}`)
  await sandbox.startDev()
  done(true)
}

async function services(ctx, sandbox, config) {
  if (!config.services.length) return
  const done = ctx.reporter.step('services', `starting ${plural(config.services.length, 'service')}`)
  await sandbox.startServices()
  done(true)
}

function reportTests(ctx, outcome) {
  const r = ctx.reporter
  const failed = outcome.results.filter((t) => !t.passed).length
  if (r.json) {
    for (const t of outcome.results) r.emit({ type: 'test', name: t.name, passed: t.passed, exitCode: t.exitCode })
    r.emit({ type: 'tests', passed: outcome.passed, total: outcome.results.length, failed })
    return
  }
  const c = r.c
  for (const t of outcome.results) {
    r.print(t.passed ? `${c.green('✓')} ${t.name}` : `${c.red('✗')} ${t.name} ${c.dim(`(exit ${t.exitCode})`)}`)
  }
  const counts = `${outcome.results.length - failed} passed, ${failed} failed`
  r.print(outcome.passed ? c.green(counts) : c.red(counts))
}

async function runTests(ctx, sandbox, config) {
  const done = ctx.reporter.step('tests', `running ${plural(config.tests.length, 'test')}`)
  const outcome = await sandbox.runTests()
  done(outcome.passed)
  reportTests(ctx, outcome)
  return outcome.passed
}

/** -w: re-run the tests whenever a file in WORKDIR changes, until Ctrl-C. */
function watchTests(ctx, sandbox, loaded, trap, passed) {
  let last = passed
  let running = null
  let again = false
  const rerun = async () => {
    if (running) return void (again = true)
    do {
      again = false
      running = runTests(ctx, sandbox, loaded.config).then((ok) => (last = ok), (err) => {
        ctx.reporter.fail(err.message)
        last = false
      })
      await running
    } while (again)
    running = null
  }
  const workdir = path.resolve(loaded.dir, loaded.config.workdir || '.')
  const close = watchDir(workdir, ctx.reporter, rerun)
  ctx.reporter.info(`watching ${workdir}; press Ctrl-C to stop`)
  return trap.untilSignal(() => (close(), last ? 0 : 1))
}

function reportUrls(ctx, sandbox, config) {
  const names = [...(config.dev ? [config.dev.name || 'dev'] : []), ...config.services.map((s) => s.name)]
  for (const name of names) {
    const url = sandbox.getServiceUrl(name)
    if (url) ctx.reporter.json ? ctx.reporter.emit({ type: 'url', name, url }) : ctx.reporter.print(`${name}: ${url}`)
  }
}

async function run(ctx) {
  const loaded = prepare(ctx)
  const dest = outputDir(ctx)
  return withSandbox(ctx, loaded, { extractDir: dest }, async (sandbox, trap) => {
    ensureDir(dest)
    const done = ctx.reporter.step('run', 'starting the sandbox (setup, services, dev, tests)')
    const result = await sandbox.run()
    done(result.success)
    if (result.testResults) reportTests(ctx, result.testResults)
    if (!sandbox.isRunning()) return result.success ? 0 : 1
    reportUrls(ctx, sandbox, loaded.config)
    if (ctx.options.watch) return watchTests(ctx, sandbox, loaded, trap, result.success)
    ctx.reporter.info('running; press Ctrl-C to stop')
    return trap.untilSignal(() => (result.success ? 0 : 1))
  })
}

async function test(ctx) {
  const loaded = prepare(ctx)
  const { config } = loaded
  if (!config.tests.length) throw new CliError(`nothing to test: ${loaded.display} has no TEST line`)
  const dest = outputDir(ctx)
  return withSandbox(ctx, loaded, { extractDir: dest }, async (sandbox, trap) => {
    ensureDir(dest)
    if (!(await setup(ctx, sandbox, config))) return 1
    await services(ctx, sandbox, config)
    await dev(ctx, sandbox, config)
    const passed = await runTests(ctx, sandbox, config)
    if (ctx.options.watch) return watchTests(ctx, sandbox, loaded, trap, passed)
    return passed ? 0 : 1
  })
}

async function exec(ctx) {
  const loaded = prepare(ctx)
  const { config } = loaded
  const r = ctx.reporter
  const dest = outputDir(ctx)
  // stdout belongs to the command; setup and services print on stderr, and
  // while the command runs only the services' output is shown (the command's
  // own comes back in the result).
  r.processStderrOnly = true
  const background = new Set([...(config.dev ? [config.dev.name || 'dev'] : []), ...config.services.map((s) => s.name)])
  let phase = 'setup'
  const show = (name) => phase !== 'exec' || background.has(name)
  return withSandbox(ctx, loaded, { show }, async (sandbox) => {
    if (!(await setup(ctx, sandbox, config))) return 1
    await services(ctx, sandbox, config)
    phase = 'exec'
    // One argument is a shell command line ("ls | wc -l"); several are an argv.
    const command = ctx.rest.length === 1 ? ctx.rest[0] : ctx.rest
    const result = await sandbox.exec(command)
    if (r.json) r.emit({ type: 'exec', command: ctx.rest, exitCode: result.exitCode, stdout: result.stdout, stderr: result.stderr })
    else {
      process.stdout.write(result.stdout)
      process.stderr.write(result.stderr)
    }
    if (dest) {
      ensureDir(dest)
      reportExtracted(ctx, await sandbox.extractOutputs(dest), dest)
    }
    return result.exitCode === null ? 1 : result.exitCode
  })
}

function reportExtracted(ctx, files, dest) {
  const r = ctx.reporter
  if (r.json) return r.emit({ type: 'extracted', dir: dest, files })
  for (const f of files) r.print(f)
  r.info(`extracted ${plural(files.length, 'file')} to ${dest}`)
}

async function extract(ctx) {
  const loaded = prepare(ctx)
  const dest = outputDir(ctx)
  return withSandbox(ctx, loaded, {}, async (sandbox) => {
    if (!(await setup(ctx, sandbox, loaded.config))) return 1
    ensureDir(dest)
    const done = ctx.reporter.step('extract', 'extracting OUTPUT files')
    const files = await sandbox.extractOutputs(dest)
    done(true)
    reportExtracted(ctx, files, dest)
    return 0
  })
}

module.exports = { run, test, exec, extract }
