import { expect, test } from 'bun:test'

const base = `http://127.0.0.1:${process.env.PORT ?? 3000}`

test('the dev server answers /hello', async () => {
  const res = await fetch(`${base}/hello`)
  expect(res.status).toBe(200)
  expect(await res.json()).toEqual({ hello: 'world' })
})
