use super::*;

#[test]
fn go_module() {
    let f = Fixture::new();
    f.file("go.mod", "module example.test/app\n").file("go.sum", "").file("main.go", "package main\n");
    f.file("cmd/tool/main.go", "").file("internal/x/x.go", "").file("pkg/README.md", "");
    f.file(".hidden/a.go", "").file("vendor/m/m.go", "").file("testdata/t.go", "").file("_tools/t.go", "");
    let mut expected = base();
    expected.run_commands = strings(&["go mod download"]);
    expected.tests = vec![process("go test ./...", None)];
    expected.outputs = strings(&["go.mod", "go.sum", "cmd/", "internal/", "main.go"]);
    assert_eq!(f.infer(), expected);
}

#[test]
fn go_files_deeper_than_the_limit_are_not_searched() {
    let f = Fixture::new();
    f.file("go.mod", "module m\n").file("deep/a/b/c/d/e/f/g/x.go", "").file("near/a/b/c/d/x.go", "");
    assert_eq!(f.infer().outputs, strings(&["go.mod", "near/"]));
}

#[test]
fn goproxy_hosts() {
    let mut f = Fixture::new();
    f.file("go.mod", "module m\n");
    f.var("GOPROXY", "https://goproxy.example.test,https://fallback.example.test:8443|direct");
    assert_eq!(f.infer().net, strings(&["goproxy.example.test", "fallback.example.test:8443"]));
    f.var("GOPROXY", "off");
    assert!(f.infer().net.is_empty());
    f.var("GOPROXY", "direct");
    assert!(f.infer().net.is_empty());
}

#[test]
fn goproxy_from_go_env_file() {
    let mut f = Fixture::new();
    f.file("go.mod", "module m\n");
    f.home_file(".config/go/env", "GOPRIVATE=example.test\nGOPROXY=https://goenv.example.test\n");
    assert_eq!(f.infer().net, strings(&["goenv.example.test"]));
    f.var("GOPROXY", "https://var.example.test");
    assert_eq!(f.infer().net, strings(&["var.example.test"]), "the variable wins");
    f.env.vars.remove("GOPROXY");
    f.var("GOENV", "off");
    assert!(f.infer().net.is_empty());
}
