use super::*;

const COMPOSE: &str = r#"
x-common: &common
  restart: unless-stopped
services:
  web:
    build: .
    ports: ["3000:3000"]
  db:
    <<: *common
    image: postgres:16-alpine
    environment:
      POSTGRES_USER: app
      POSTGRES_DB: app_dev
      POSTGRES_PASSWORD: not-read
    ports:
      - "5433:5432"
  cache:
    image: registry.example.com/library/redis:7@sha256:0123
  queue:
    image: rabbitmq:3
  mysql:
    image: mariadb:11
    ports:
      - target: 3307
        published: 13306
  mongo:
    image: mongo
    ports: [27018]
  memcached:
    image: registry.example.com:5000/mirror/memcached:1.6
"#;

#[test]
fn well_known_servers_become_services() {
    let f = Fixture::new();
    f.file("compose.yaml", COMPOSE);
    let inference = f.inference();
    let file = &inference.file;
    let names: Vec<&str> = file.services.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["db", "cache", "mysql", "mongo", "memcached"], "file order, unknown images skipped");

    let db = service(file, "db");
    assert_eq!(db.port, Some(5432), "the container side of the mapping");
    assert!(db.command.starts_with("sh -c '"), "{}", db.command);
    for part in ["initdb -D \"$D\" -U app -A trust", "CREATE DATABASE \\\"app_dev\\\"", "-h 127.0.0.1 -p 5432 -k /tmp"]
    {
        assert!(db.command.contains(part), "{part} in {}", db.command);
    }
    assert!(db.command.contains("D=/tmp/sandbox-postgres-db;"), "{}", db.command);
    assert!(!db.command.contains("not-read"), "passwords are not copied");

    let cache = service(file, "cache");
    assert_eq!((cache.port, cache.command.as_str()), (Some(6379), "redis-server --port 6379 --save \"\""));
    let mysql = service(file, "mysql");
    assert_eq!(mysql.port, Some(3307));
    assert!(mysql.command.contains("--port=3307") && mysql.command.contains("--bind-address=127.0.0.1"));
    let mongo = service(file, "mongo");
    assert_eq!(mongo.port, Some(27018));
    assert!(mongo.command.contains("mongod --dbpath /tmp/sandbox-mongo-mongo --bind_ip 127.0.0.1 --port 27018"));
    let memcached = service(file, "memcached");
    assert_eq!((memcached.port, memcached.command.as_str()), (Some(11211), "memcached -l 127.0.0.1 -p 11211"));

    for skipped in ["service web", "service queue"] {
        assert!(inference.notes.iter().any(|n| n.contains(skipped)), "{skipped}: {:?}", inference.notes);
    }
}

#[test]
fn postgres_defaults() {
    let f = Fixture::new();
    f.file(
        "docker-compose.yml",
        "services:\n  pg:\n    image: postgres\n    environment:\n      - POSTGRES_DB=postgres\n",
    );
    let pg = service(&f.infer(), "pg").clone();
    assert_eq!(pg.port, Some(5432));
    assert_eq!(
        pg.command,
        "sh -c 'D=/tmp/sandbox-postgres-pg; [ -s \"$D/PG_VERSION\" ] || { initdb -D \"$D\" -U postgres -A trust >/dev/null; } \
         && exec postgres -D \"$D\" -h 127.0.0.1 -p 5432 -k /tmp'"
    );
}

#[test]
fn unsafe_environment_values_are_not_used() {
    let f = Fixture::new();
    f.file(
        "compose.yml",
        "services:\n  pg:\n    image: postgres\n    environment:\n      POSTGRES_USER: \"x'; rm -rf /; '\"\n",
    );
    let pg = service(&f.infer(), "pg").clone();
    assert!(pg.command.contains("-U postgres") && !pg.command.contains("rm -rf"), "{}", pg.command);
}

#[test]
fn port_forms() {
    let cases = [
        ("[\"6380\"]", 6380),
        ("[\"127.0.0.1:16379:6381/tcp\"]", 6381),
        ("[6382]", 6382),
        ("[\"8000-8001:6379\"]", 6379),
        ("[\"${PORT:-1}:6383\"]", 6383),
        ("[\"6000-6001\"]", 6379),
        ("[]", 6379),
        ("\"6390\"", 6379),
        ("[{target: 6384}]", 6384),
        ("[{target: \"6385\", published: \"16385\"}]", 6385),
    ];
    for (ports, port) in cases {
        let f = Fixture::new();
        f.file("compose.yaml", &format!("services:\n  r:\n    image: redis\n    ports: {ports}\n"));
        let r = service(&f.infer(), "r").clone();
        assert_eq!(r.port, Some(port), "{ports}");
        assert_eq!(r.command, format!("redis-server --port {port} --save \"\""), "{ports}");
    }
}

#[test]
fn clashing_ports_move_to_the_published_side_or_skip() {
    let f = Fixture::new();
    f.file(
        "compose.yaml",
        "services:\n  a:\n    image: redis\n  b:\n    image: redis\n    ports: [\"6380:6379\"]\n  c:\n    image: redis\n",
    );
    let inference = f.inference();
    let ports: Vec<(&str, Option<u16>)> = inference.file.services.iter().map(|s| (s.name.as_str(), s.port)).collect();
    assert_eq!(ports, [("a", Some(6379)), ("b", Some(6380))]);
    assert!(inference.notes.iter().any(|n| n.contains("service c") && n.contains("6379")), "{:?}", inference.notes);
}

#[test]
fn compose_file_order_and_names() {
    let f = Fixture::new();
    f.file("docker-compose.yml", "services:\n  old:\n    image: redis\n");
    f.file(
        "compose.yaml",
        "services:\n  new:\n    image: redis\n  \"bad name\":\n    image: redis\n  PORT=1:\n    image: redis\n",
    );
    let file = f.infer();
    assert_eq!(file.services.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(), ["new"]);
}

#[test]
fn merge_keys_supply_the_image() {
    let f = Fixture::new();
    f.file(
        "compose.yaml",
        "x-db: &db\n  image: postgres:15\nx-p: &p\n  ports: [\"5434:5435\"]\nservices:\n  one:\n    <<: *db\n  two:\n    <<: [*p, *db]\n",
    );
    let file = f.infer();
    assert_eq!(service(&file, "one").port, Some(5432));
    assert_eq!(service(&file, "two").port, Some(5435));
}

#[test]
fn odd_compose_files_give_no_services() {
    let texts = [
        "services: [redis]\n",
        "services:\n  r: redis\n",
        "services:\n  r:\n    image: [redis]\n",
        "- just\n- a list\n",
        "services: {",
        "\t\tnot: yaml: at: all",
        "",
        "---\n...\n",
    ];
    for text in texts {
        let f = Fixture::new();
        f.file("compose.yaml", text);
        assert!(f.infer().services.is_empty(), "{text:?}");
    }
}

#[test]
fn alias_bombs_and_deep_nesting_are_refused() {
    let mut bomb = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
    for (i, prev) in ('b'..='k').zip('a'..) {
        bomb.push_str(&format!(
            "{i}: &{i} [*{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}]\n"
        ));
    }
    bomb.push_str("services:\n  r:\n    image: redis\n");
    let deep = format!("services: {}{}\n", "[".repeat(100_000), "]".repeat(100_000));
    for text in [bomb, deep] {
        let f = Fixture::new();
        f.file("compose.yaml", &text);
        let inference = f.inference();
        assert!(inference.file.services.is_empty());
        assert!(inference.notes.iter().any(|n| n.starts_with("compose.yaml: ")), "{:?}", inference.notes);
    }
}

#[test]
fn services_keep_clear_of_process_names_and_the_dev_port() {
    let f = Fixture::new();
    f.file("package.json", r#"{"scripts":{"dev":"node x.js --port 6379"}}"#);
    f.file(
        "compose.yaml",
        "services:\n  dev:\n    image: redis\n  test-1:\n    image: redis\n  test-x:\n    image: redis\n    ports: [\"6380:6379\"]\n  r:\n    image: redis\n",
    );
    let inference = f.inference();
    let ports: Vec<(&str, Option<u16>)> = inference.file.services.iter().map(|s| (s.name.as_str(), s.port)).collect();
    assert_eq!(ports, [("test-x", Some(6380))], "{:?}", inference.notes);
    for skipped in ["service dev", "service test-1", "service r"] {
        assert!(inference.notes.iter().any(|n| n.contains(skipped)), "{skipped}: {:?}", inference.notes);
    }
}
