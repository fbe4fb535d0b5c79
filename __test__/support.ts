// Helpers shared by the suites that drive real sandboxes.
import { afterAll, afterEach } from 'bun:test'
import { mkdtempSync, readFileSync, readdirSync, realpathSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Sandbox, type Sandboxfile, type SandboxOptions } from '..'

/**
 * Paths removed once the calling file's tests are done: `tempDir(prefix)` makes a directory
 * under the real tmpdir (no symlink in its path), `removeAfter(path)` adds any other.
 */
export function scratchPaths(): { tempDir(prefix: string): string; removeAfter(path: string): void } {
  const paths: string[] = []
  afterAll(() => {
    for (const p of paths) rmSync(p, { recursive: true, force: true })
  })
  return {
    tempDir(prefix) {
      const dir = mkdtempSync(join(realpathSync(tmpdir()), prefix))
      paths.push(dir)
      return dir
    },
    removeAfter(path) {
      paths.push(path)
    },
  }
}

/** Whether `pid` runs (exists and is not a zombie). */
export function alive(pid: number): boolean {
  try {
    return !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'))
  } catch {
    return false
  }
}

/**
 * The `bun-sandbox-init` processes alive (not zombies) whose parent is `pid`:
 * for a host process its zygote (the one init it starts), for the zygote the
 * helpers it forked (one per sandbox or spare), for a helper its PID 1.
 */
export function initsOf(pid: number): number[] {
  const out: number[] = []
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue
    try {
      const status = readFileSync(`/proc/${p}/status`, 'utf8')
      if (!/^Name:\s+bun-sandbox-ini/m.test(status) || /^State:\s+Z/m.test(status)) continue
      if (Number(/^PPid:\s+(\d+)/m.exec(status)![1]) === pid) out.push(Number(p))
    } catch {}
  }
  return out.sort((a, b) => a - b)
}

/** Every init below host process `pid`: its zygote, the helpers, their PID 1s. */
export function initTree(pid: number): number[] {
  const out: number[] = []
  for (let level = initsOf(pid); level.length > 0; level = level.flatMap(initsOf)) out.push(...level)
  return out
}

/** A Sandboxfile object on the host filesystem, WORKDIR the project. */
export function sf(parts: Partial<Sandboxfile>): Sandboxfile {
  return { from: 'host', workdir: '.', runCommands: [], services: [], tests: [], outputs: [], logs: [], net: [], secrets: [], ...parts }
}

/** Everything the output callbacks saw, in order. */
export class Recorder {
  events: { kind: 'out' | 'err' | 'exit'; name: string; data?: string; code?: number | null }[] = []
  readonly options: Pick<SandboxOptions, 'onStdout' | 'onStderr' | 'onExit'> = {
    onStdout: (name, data) => void this.events.push({ kind: 'out', name, data }),
    onStderr: (name, data) => void this.events.push({ kind: 'err', name, data }),
    onExit: (name, code) => void this.events.push({ kind: 'exit', name, code }),
  }
  stdout(name: string): string {
    return this.events.filter((e) => e.kind === 'out' && e.name === name).map((e) => e.data).join('')
  }
  stderr(name: string): string {
    return this.events.filter((e) => e.kind === 'err' && e.name === name).map((e) => e.data).join('')
  }
  exits(name?: string): (number | null)[] {
    return this.events.filter((e) => e.kind === 'exit' && (name === undefined || e.name === name)).map((e) => e.code!)
  }
  exitNames(): string[] {
    return this.events.filter((e) => e.kind === 'exit').map((e) => e.name)
  }
  /** How many times `name` wrote `word` on a line of its own. */
  count(name: string, word: string): number {
    return this.stdout(name).split('\n').filter((l) => l === word).length
  }
}

/**
 * A `sandbox(config, options)` whose Sandboxes are stopped after each test,
 * whatever it did; `project()` makes the default cwd.
 */
export function sandboxes(project: () => string): (config: Sandboxfile, options?: SandboxOptions) => Sandbox {
  const live: Sandbox[] = []
  afterEach(async () => {
    await Promise.all(live.splice(0).map((sb) => sb.stop().catch(() => {})))
  })
  return (config, options = {}) => {
    const sb = new Sandbox(config, { cwd: options.cwd ?? project(), ...options })
    live.push(sb)
    return sb
  }
}

const tick = () => new Promise((r) => setTimeout(r, 10))

/** Polls `cond` every 10 ms until it holds; fails after `ms`. */
export async function until(cond: () => boolean | Promise<boolean>, what: string, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`)
    await tick()
  }
}

/** An observation window: afterwards the caller checks what (did not) happen. Not synchronisation. */
export const observe = (ms: number) => new Promise((r) => setTimeout(r, ms))
