//! Test fixtures shared by the parser's and the formatter's tests.

/// The full example of SPEC §1.
pub const SPEC_EXAMPLE: &str = "# Sandboxfile
FROM host
WORKDIR .

RUN bun install

DEV PORT=3000 WATCH=src/** bun run dev
SERVICE db PORT=5432 postgres -D ./pgdata
SERVICE worker WATCH=src/worker/** bun run worker.ts
TEST bun test

OUTPUT src/
OUTPUT package.json
LOGS logs/*

NET api.example.com
NET *.stripe.com
SECRET STRIPE_API_KEY
";

pub fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}
