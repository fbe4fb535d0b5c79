//! Paths that are never extracted unless an OUTPUT line names them exactly
//! (SPEC §1.2): files that would run code on the host later, without anyone
//! running the project on purpose — at shell start, on `cd`, on a git
//! command, when an editor or agent opens the folder, on a CI push, or on any
//! package-manager command.
//!
//! The project's own code (`src/`, `package.json` scripts, `node_modules/`)
//! runs on the host too, but only when the user runs it; extracting it is what
//! OUTPUT is for, and reviewing it is the user's part.
//!
//! Every entry applies at any depth (`packages/app/.vscode/`, a nested
//! repository's `.git/`), and matching ignores ASCII case, because the
//! destination may be a case-insensitive file system where `.GIT/Hooks` is
//! `.git/hooks`. `docs/EXTRACTION.md` lists the same table.

use std::sync::OnceLock;

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};

/// One protected path and why.
#[derive(Debug, PartialEq, Eq)]
pub struct Protected {
    /// Relative to the directory it sits in, at any depth.
    pub path: &'static str,
    /// A directory: protects the path itself and everything below it.
    pub dir: bool,
    /// Why a change there would run code on the host.
    pub reason: &'static str,
}

const fn dir(path: &'static str, reason: &'static str) -> Protected {
    Protected { path, dir: true, reason }
}

const fn file(path: &'static str, reason: &'static str) -> Protected {
    Protected { path, dir: false, reason }
}

const SHELL: &str = "read and run by a shell at start or exit (when WORKDIR is a home directory)";
const HOOK_TOOL: &str = "lists commands that run as git hooks on every commit";
const AGENT: &str = "agent configuration: hooks and MCP servers are commands the agent starts";
const CI: &str = "CI configuration: runs on push with the repository's secrets";

/// The protected list. The order is the order of `docs/EXTRACTION.md`.
pub const PROTECTED: &[Protected] = &[
    // Git
    dir(
        ".git",
        "hooks and config run commands on commit, checkout and fetch; a `.git` file can point git at another repository; the rest is repository state that a partial copy or a deletion would destroy",
    ),
    dir(".husky", "git hooks kept in the worktree (husky points core.hooksPath at it)"),
    file(".pre-commit-config.yaml", HOOK_TOOL),
    file("lefthook.yml", HOOK_TOOL),
    file(".lefthook.yml", HOOK_TOOL),
    file(".gitconfig", "git configuration of a home directory: hooksPath, aliases, credential helpers"),
    dir(".config/git", "git configuration of a home directory: hooksPath, aliases, credential helpers"),
    // Shells and directory environments
    file(".bashrc", SHELL),
    file(".bash_profile", SHELL),
    file(".bash_login", SHELL),
    file(".bash_logout", SHELL),
    file(".profile", SHELL),
    file(".zshrc", SHELL),
    file(".zshenv", SHELL),
    file(".zprofile", SHELL),
    file(".zlogin", SHELL),
    file(".zlogout", SHELL),
    file(".envrc", "direnv runs it on entering the directory"),
    file("mise.toml", "mise runs its hooks and env scripts on entering the directory"),
    file(".mise.toml", "mise runs its hooks and env scripts on entering the directory"),
    dir(".ssh", "authorized_keys and config (ProxyCommand, LocalCommand) when WORKDIR is a home directory"),
    // Editors
    dir(".vscode", "tasks run on folder open; settings choose interpreters, terminals and MCP servers"),
    dir(".idea", "run configurations and startup tasks"),
    dir(".zed", "tasks and settings that start language servers"),
    dir(".devcontainer", "initializeCommand runs on the host when the folder is opened in a container"),
    file(".devcontainer.json", "initializeCommand runs on the host when the folder is opened in a container"),
    file(".exrc", "vim and neovim run it when 'exrc' is set"),
    file(".nvimrc", "neovim runs it when 'exrc' is set"),
    file(".nvim.lua", "neovim runs it when 'exrc' is set"),
    // Coding agents
    file(".mcp.json", AGENT),
    dir(".claude", AGENT),
    dir(".cursor", AGENT),
    dir(".gemini", AGENT),
    dir(".codex", AGENT),
    dir(".windsurf", AGENT),
    dir(".continue", AGENT),
    // CI
    dir(".github/workflows", CI),
    dir(".github/actions", "actions that workflows run, with the repository's secrets"),
    file(".gitlab-ci.yml", CI),
    dir(".circleci", CI),
    dir(".buildkite", CI),
    file(".travis.yml", CI),
    file("azure-pipelines.yml", CI),
    file("bitbucket-pipelines.yml", CI),
    file("Jenkinsfile", CI),
    file(".drone.yml", CI),
    file(".woodpecker.yml", CI),
    dir(".woodpecker", CI),
    // Package managers and build tools
    file(".npmrc", "node-options, script-shell and registry settings apply to every npm command"),
    file(".yarnrc", "yarn-path runs a file as Yarn on every yarn command"),
    file(".yarnrc.yml", "yarnPath and plugins run code on every yarn command"),
    dir(".yarn/releases", "the Yarn release that yarnPath runs on every yarn command"),
    dir(".yarn/plugins", "Yarn plugins, loaded by every yarn command"),
    file(".pnpmfile.cjs", "pnpm runs its hooks on every install"),
    file(".pnpmfile.mjs", "pnpm runs its hooks on every install"),
    file("bunfig.toml", "preload scripts run on every bun run and bun test; registry settings"),
    file(".bunfig.toml", "preload scripts run on every bun run and bun test; registry settings"),
    file(".cargo/config", "runner, rustc-wrapper and linker settings run on every cargo build"),
    file(".cargo/config.toml", "runner, rustc-wrapper and linker settings run on every cargo build"),
];

/// The compiled table: one GlobSet, and for each of its globs the entry it
/// came from.
struct Compiled {
    set: GlobSet,
    entry: Vec<usize>,
}

fn compiled() -> &'static Compiled {
    static COMPILED: OnceLock<Compiled> = OnceLock::new();
    COMPILED.get_or_init(|| {
        let mut builder = GlobSetBuilder::new();
        let mut entry = Vec::new();
        for (index, protected) in PROTECTED.iter().enumerate() {
            let base = format!("**/{}", globset::escape(protected.path));
            let mut globs = vec![base.clone()];
            if protected.dir {
                globs.push(format!("{base}/**"));
            }
            for glob in globs {
                // The table is constant and a unit test builds it, so a
                // failure here is a bug in this file, never an input.
                let glob = GlobBuilder::new(&glob)
                    .literal_separator(true)
                    .case_insensitive(true)
                    .build()
                    .expect("protected patterns are valid globs");
                builder.add(glob);
                entry.push(index);
            }
        }
        let set = builder.build().expect("protected patterns are valid globs");
        Compiled { set, entry }
    })
}

/// The protected entry that covers `path` (relative, `/`-separated), if any.
pub fn protected(path: &str) -> Option<&'static Protected> {
    let compiled = compiled();
    let first = compiled.set.matches(path).into_iter().min()?;
    Some(&PROTECTED[compiled.entry[first]])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_compiles_and_has_no_duplicates() {
        assert!(compiled().set.len() >= PROTECTED.len());
        let mut paths: Vec<_> = PROTECTED.iter().map(|p| p.path).collect();
        paths.sort();
        paths.dedup();
        assert_eq!(paths.len(), PROTECTED.len());
    }

    #[test]
    fn matches_at_any_depth_and_any_case() {
        for path in [
            ".git/hooks/pre-commit",
            ".git/config",
            ".git",
            "vendor/lib/.git/config",
            ".GIT/Hooks/post-checkout",
            ".bashrc",
            "home/u/.zshrc",
            ".vscode",
            ".vscode/tasks.json",
            "packages/app/.vscode/settings.json",
            ".mcp.json",
            ".claude/settings.json",
            ".github/workflows/ci.yml",
            ".github/workflows",
            ".npmrc",
            ".yarnrc.yml",
            "bunfig.toml",
            ".envrc",
            "Jenkinsfile",
            ".cargo/config.toml",
        ] {
            assert!(protected(path).is_some(), "{path} should be protected");
        }
    }

    #[test]
    fn near_misses_are_not_protected() {
        for path in [
            "src/git/config",
            ".gitignore",
            ".gitattributes",
            "my.bashrc",
            ".bashrc.d/x",
            ".github/CODEOWNERS",
            ".github/ISSUE_TEMPLATE/bug.md",
            "src/.vscode-like",
            "npmrc",
            "docs/bunfig.toml.md",
            "src/index.ts",
            "package.json",
        ] {
            assert_eq!(protected(path), None, "{path} should not be protected");
        }
    }

    #[test]
    fn the_docs_list_every_entry_with_its_reason() {
        let docs = include_str!("../../docs/EXTRACTION.md");
        for entry in PROTECTED {
            let row = format!("| `{}` | ", entry.path);
            let line = docs.lines().find(|l| l.starts_with(&row));
            let line = line.unwrap_or_else(|| panic!("docs/EXTRACTION.md has no row for {}", entry.path));
            assert!(line.ends_with(&format!("| {} |", entry.reason)), "{line}");
        }
    }

    #[test]
    fn reasons_name_the_entry() {
        assert_eq!(protected("a/.git/hooks/x").map(|p| p.path), Some(".git"));
        assert_eq!(protected(".github/workflows/ci.yml").map(|p| p.path), Some(".github/workflows"));
        assert!(protected(".envrc").is_some_and(|p| p.reason.contains("direnv")));
    }
}
