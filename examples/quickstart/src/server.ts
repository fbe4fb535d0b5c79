import { appendFileSync, mkdirSync } from 'node:fs'

const port = Number(process.env.PORT ?? 3000)
mkdirSync('logs', { recursive: true })

Bun.serve({
  port,
  fetch(req) {
    const url = new URL(req.url)
    appendFileSync('logs/access.log', `${req.method} ${url.pathname}\n`)
    if (url.pathname === '/hello') return Response.json({ hello: 'world' })
    return new Response('not found', { status: 404 })
  },
})
console.log(`listening on http://127.0.0.1:${port}`)
