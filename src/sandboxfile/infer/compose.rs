//! Services from a compose file: each well-known server image (postgres,
//! redis, mysql/mariadb, memcached, mongo) becomes a SERVICE that runs the
//! host's own binary, with its data in a fresh directory under the sandbox's
//! private `/tmp`. Other services are skipped.

use super::project::{Project, is_plain};
use super::{parse_port, yaml};
use crate::sandboxfile::Service;
use yaml_rust2::Yaml;

/// The names docker compose looks for, in its order.
const NAMES: &[&str] = &["compose.yaml", "compose.yml", "docker-compose.yaml", "docker-compose.yml"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Server {
    Postgres,
    Redis,
    Mysql,
    Memcached,
    Mongo,
}

impl Server {
    fn of_image(image: &str) -> Option<Server> {
        // `registry.example.com:5000/library/postgres:16@sha256:…` → `postgres`
        let image = image.split('@').next().unwrap_or_default();
        let name = image.rsplit('/').next().unwrap_or_default();
        let name = name.split(':').next().unwrap_or_default().to_ascii_lowercase();
        match name.as_str() {
            "postgres" | "postgis" => Some(Server::Postgres),
            "redis" => Some(Server::Redis),
            "mysql" | "mariadb" => Some(Server::Mysql),
            "memcached" => Some(Server::Memcached),
            "mongo" => Some(Server::Mongo),
            _ => None,
        }
    }

    fn default_port(self) -> u16 {
        match self {
            Server::Postgres => 5432,
            Server::Redis => 6379,
            Server::Mysql => 3306,
            Server::Memcached => 11211,
            Server::Mongo => 27017,
        }
    }

    /// One command line. `name` is a plain service name, safe in a path.
    fn command(self, name: &str, port: u16, env: &Yaml) -> String {
        match self {
            Server::Redis => format!("redis-server --port {port} --save \"\""),
            Server::Memcached => format!("memcached -l 127.0.0.1 -p {port}"),
            Server::Mongo => {
                let d = format!("/tmp/sandbox-mongo-{name}");
                format!("sh -c 'mkdir -p {d} && exec mongod --dbpath {d} --bind_ip 127.0.0.1 --port {port}'")
            }
            Server::Mysql => format!(
                "sh -c 'D=/tmp/sandbox-mysql-{name}; if [ ! -d \"$D/mysql\" ]; then \
                 if command -v mariadb-install-db >/dev/null 2>&1; \
                 then mariadb-install-db --no-defaults --auth-root-authentication-method=normal \
                 --datadir=\"$D\" >/dev/null; \
                 else mysqld --no-defaults --initialize-insecure --datadir=\"$D\"; fi; fi; \
                 exec mysqld --no-defaults --datadir=\"$D\" --bind-address=127.0.0.1 --port={port} \
                 --socket=/tmp/sandbox-mysql-{name}.sock'"
            ),
            Server::Postgres => {
                let user = env_value(env, "POSTGRES_USER").unwrap_or_else(|| "postgres".into());
                let create = match env_value(env, "POSTGRES_DB").filter(|db| *db != user) {
                    Some(db) => format!(
                        " && echo \"CREATE DATABASE \\\"{db}\\\"\" | postgres --single -D \"$D\" postgres >/dev/null"
                    ),
                    None => String::new(),
                };
                format!(
                    "sh -c 'D=/tmp/sandbox-postgres-{name}; [ -s \"$D/PG_VERSION\" ] || \
                     {{ initdb -D \"$D\" -U {user} -A trust >/dev/null{create}; }} && \
                     exec postgres -D \"$D\" -h 127.0.0.1 -p {port} -k /tmp'"
                )
            }
        }
    }
}

/// `reserved`: ports other processes (DEV) already listen on.
pub fn services(project: &Project, reserved: &[u16]) -> Vec<Service> {
    let Some(file) = project.first_file(NAMES) else { return Vec::new() };
    let Some(doc) = project.read(file).and_then(|text| yaml::load(project, file, &text)) else {
        return Vec::new();
    };
    let Yaml::Hash(entries) = &doc["services"] else { return Vec::new() };
    let mut services: Vec<Service> = Vec::new();
    for (name, spec) in entries {
        let Some(name) = name.as_str().filter(|n| is_name(n)) else { continue };
        if is_process_name(name) {
            project.note(format!("{file}: service {name}"), "the name is DEV's or a TEST's, skipped");
            continue;
        }
        let Some(server) = get(spec, "image").as_str().and_then(Server::of_image) else {
            project.note(format!("{file}: service {name}"), "not a well-known server image, skipped");
            continue;
        };
        let taken = |p: &u16| reserved.contains(p) || services.iter().any(|s| s.port == Some(*p));
        let (inside, published) = port(get(spec, "ports")).unwrap_or((server.default_port(), None));
        let Some(port) = [Some(inside), published].into_iter().flatten().find(|p| !taken(p)) else {
            project.note(format!("{file}: service {name}"), format!("port {inside} is already taken, skipped"));
            continue;
        };
        let command = server.command(name, port, get(spec, "environment"));
        services.push(Service { name: name.to_string(), command, port: Some(port), watch: None });
    }
    services
}

/// A key of a service, also through a YAML merge key (`<<: *defaults`).
fn get<'y>(spec: &'y Yaml, key: &str) -> &'y Yaml {
    let own = &spec[key];
    if !own.is_badvalue() {
        return own;
    }
    match &spec["<<"] {
        Yaml::Array(list) => list.iter().map(|m| &m[key]).find(|v| !v.is_badvalue()).unwrap_or(own),
        merged => &merged[key],
    }
}

/// A compose service name that is also a safe SERVICE name and path part.
fn is_name(name: &str) -> bool {
    is_plain(name) && name.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
}

/// The names DEV (`dev`) and TEST lines (`test-0`, …) go by.
fn is_process_name(name: &str) -> bool {
    name == "dev" || name.strip_prefix("test-").is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// The container side and the published side of the first `ports` entry:
/// `"5432"`, `"5433:5432"`, `"127.0.0.1:5433:5432/tcp"`, or the long form
/// `{ target: 5432, published: 5433 }`.
fn port(ports: &Yaml) -> Option<(u16, Option<u16>)> {
    let first = ports.as_vec()?.first()?;
    let text = |y: &Yaml| match y {
        Yaml::Integer(n) => Some(n.to_string()),
        Yaml::String(s) => Some(s.clone()),
        _ => None,
    };
    if let Yaml::Hash(_) = first {
        let inside = parse_port(&text(&first["target"])?)?;
        return Some((inside, text(&first["published"]).and_then(|p| parse_port(&p))));
    }
    let spec = text(first)?;
    let spec = spec.split('/').next().unwrap_or_default();
    let mut parts = spec.rsplit(':');
    let inside = parse_port(parts.next()?)?;
    Some((inside, parts.next().and_then(parse_port)))
}

/// A variable from a service's `environment`, as a map or a `KEY=value`
/// list, when it is a plain identifier (safe inside the command line).
fn env_value(environment: &Yaml, key: &str) -> Option<String> {
    let value = match environment {
        Yaml::Hash(_) => match &environment[key] {
            Yaml::String(s) => Some(s.clone()),
            Yaml::Integer(n) => Some(n.to_string()),
            _ => None,
        },
        Yaml::Array(list) => list.iter().filter_map(Yaml::as_str).find_map(|item| {
            let (k, v) = item.split_once('=')?;
            (k.trim() == key).then(|| v.trim().to_string())
        }),
        _ => None,
    }?;
    crate::sandboxfile::is_env_name(&value).then_some(value)
}
