//! The layering rule of `src/`: imports point one way, from the top of the stack down.
//!
//! ```text
//! model, config, job                      pure types, ports (health, contact center) and leaf toolkits
//!   <- engine, telemetry                   pure decide, rules, matching plan; logs and metrics
//!   <- store, net                          persistence; outbound HTTP policy
//!   <- graph, connectors                   the two outside worlds
//!   <- sim, runtime                        simulators (feature "demo"); the engine's I/O shell
//!   <- integrations                        contact lifecycle (Dynamics), Teams chat messaging
//!   <- http                                routes over narrow sub-states
//!   <- app                                 the composition root: builder, wiring, jobs
//!   <- cli                                 commands
//!   <- main.rs
//! ```
//!
//! A module may import from its own folder and from layers strictly below its own. One crate
//! cannot make the compiler enforce this, so this test reads every `crate::…` path under
//! `src/` and fails naming file, line and the offending import.

use std::path::{Path, PathBuf};

/// Layer of each top-level module of `src/` (the first segment after `crate::`).
const LAYERS: &[(&str, u8)] = &[
    ("model", 0),
    ("config", 0),
    ("telemetry", 1),
    ("job", 0),
    ("engine", 1),
    ("store", 2),
    ("net", 2),
    ("graph", 3),
    ("connectors", 3),
    ("sim", 4),
    ("runtime", 4),
    ("integrations", 5),
    ("http", 6),
    ("app", 7),
    ("cli", 8),
    // The binary's crate root: it may use everything.
    ("main", 9),
];

fn layer(module: &str) -> Option<u8> {
    LAYERS
        .iter()
        .find(|(name, _)| *name == module)
        .map(|(_, layer)| *layer)
}

/// One import that points up the stack (or sideways into a sibling of the same layer).
#[derive(Debug, PartialEq, Eq)]
struct Violation {
    file: String,
    line: usize,
    from: String,
    to: String,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}:{}: `{}` may not import `crate::{}`",
            self.file, self.line, self.from, self.to
        )
    }
}

/// The top-level module a file under `src/` belongs to (`src/graph/client/mod.rs` → `graph`,
/// `src/main.rs` → `main`, `src/lib.rs` → none: the crate root declares, it does not import).
fn owner(relative: &Path) -> Option<String> {
    let first = relative.components().next()?.as_os_str().to_str()?;
    let name = first.strip_suffix(".rs").unwrap_or(first);
    (name != "lib").then(|| name.to_owned())
}

/// Every `crate::NAME` in `source` outside comments, with its 1-based line, including the
/// names of a grouped `use crate::{a, b::c}`.
fn crate_paths(source: &str) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    let mut in_group = false;
    for (index, raw) in source.lines().enumerate() {
        let line = raw.split("//").next().unwrap_or("");
        let mut rest = line;
        if in_group {
            for name in group_names(rest) {
                found.push((index + 1, name));
            }
            if rest.contains('}') {
                in_group = false;
            }
            continue;
        }
        while let Some(at) = rest.find("crate::") {
            let preceded_by_ident = rest[..at]
                .chars()
                .last()
                .is_some_and(|c| c.is_alphanumeric() || c == '_');
            let after = &rest[at + "crate::".len()..];
            if !preceded_by_ident {
                if let Some(group) = after.strip_prefix('{') {
                    for name in group_names(group) {
                        found.push((index + 1, name));
                    }
                    if !group.contains('}') {
                        in_group = true;
                    }
                } else {
                    let name: String = after
                        .chars()
                        .take_while(|c| c.is_alphanumeric() || *c == '_')
                        .collect();
                    if !name.is_empty() {
                        found.push((index + 1, name));
                    }
                }
            }
            rest = after;
        }
    }
    found
}

/// The first segment of each path in one line of a `use crate::{…}` group.
fn group_names(text: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut depth = 0usize;
    let mut start_of_item = true;
    let mut current = String::new();
    for c in text.chars() {
        match c {
            '{' => {
                depth += 1;
                start_of_item = false;
            }
            '}' => {
                if depth == 0 {
                    break;
                }
                depth -= 1;
            }
            ',' if depth == 0 => start_of_item = true,
            c if start_of_item && depth == 0 && (c.is_alphanumeric() || c == '_') => {
                current.push(c)
            }
            _ => {
                if !current.is_empty() {
                    names.push(std::mem::take(&mut current));
                    start_of_item = false;
                }
            }
        }
    }
    if !current.is_empty() {
        names.push(current);
    }
    names.retain(|n| n != "self");
    names
}

/// Checks one file's text; `relative` is its path below `src/`.
fn check_source(relative: &Path, source: &str) -> Vec<Violation> {
    let Some(from) = owner(relative) else {
        return Vec::new();
    };
    let from_layer = layer(&from).unwrap_or_else(|| {
        panic!(
            "src/{}: module `{from}` has no layer in LAYERS",
            relative.display()
        )
    });
    crate_paths(source)
        .into_iter()
        .filter_map(|(line, to)| {
            if to == from {
                return None;
            }
            let allowed = match layer(&to) {
                Some(to_layer) => to_layer < from_layer,
                // A crate-root item (re-export in lib.rs): only the binary may reach it.
                None => from == "main",
            };
            (!allowed).then(|| Violation {
                file: format!("src/{}", relative.display()),
                line,
                from: from.clone(),
                to,
            })
        })
        .collect()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src/") {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn src_imports_point_down_the_layers() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    assert!(
        files.len() > 50,
        "found only {} files under src/",
        files.len()
    );
    let violations: Vec<String> = files
        .iter()
        .flat_map(|path| {
            let source = std::fs::read_to_string(path).expect("read source file");
            check_source(path.strip_prefix(&src).expect("below src/"), &source)
        })
        .map(|v| v.to_string())
        .collect();
    assert!(
        violations.is_empty(),
        "imports against the layering:\n{}",
        violations.join("\n")
    );
}

#[test]
fn every_top_level_module_has_a_layer() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    for entry in std::fs::read_dir(&src).expect("read src/") {
        let path = entry.expect("directory entry").path();
        if let Some(name) = owner(path.strip_prefix(&src).expect("below src/")) {
            assert!(layer(&name).is_some(), "src/{name} has no layer in LAYERS");
        }
    }
}

#[test]
fn checker_reports_each_of_the_old_cycles() {
    // (1) a subsystem builder importing the application and the HTTP state.
    let wiring = "use crate::app::Job;\nuse crate::http::AppState;\n";
    let found = check_source(Path::new("graph/wiring.rs"), wiring);
    assert_eq!(found.len(), 2, "{found:?}");
    assert_eq!(
        found[0].to_string(),
        "src/graph/wiring.rs:1: `graph` may not import `crate::app`"
    );
    assert_eq!(found[1].line, 2);
    // The HTTP layer reaching into the engine's I/O shell is fine (runtime is below http),
    // but the engine's I/O shell reaching into HTTP is not.
    assert!(check_source(Path::new("http/api.rs"), "use crate::runtime::audit;").is_empty());
    assert_eq!(
        check_source(
            Path::new("runtime/service.rs"),
            "use crate::http::AppState;"
        )
        .len(),
        1
    );
    // (2) a subsystem importing the command line.
    let found = check_source(
        Path::new("graph/accounts_cli.rs"),
        "fn f() { let _ = crate::cli::EXIT_CONFIG; }",
    );
    assert_eq!(found.len(), 1, "{found:?}");
    // (3) a section's config importing the aggregate configuration back, in a group.
    let found = check_source(
        Path::new("engine/config.rs"),
        "use crate::{\n    model::Side,\n    app::config::{Config, ConfigErrors},\n};\n",
    );
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].line, 3);
    assert_eq!(found[0].to, "app");
    // Siblings of one layer do not import each other either.
    assert_eq!(
        check_source(Path::new("graph/x.rs"), "use crate::connectors::Agent;").len(),
        1
    );
}

#[test]
fn checker_ignores_comments_own_folder_and_lookalikes() {
    let source = "// see crate::app::Application\n\
                  use crate::graph::client::GraphClient;\n\
                  use crate::model::Side; // not crate::http\n\
                  let x = mycrate::app::f();\n";
    assert!(check_source(Path::new("graph/presence/mod.rs"), source).is_empty());
    assert!(check_source(Path::new("lib.rs"), "pub use crate::app::Application;").is_empty());
    assert!(check_source(Path::new("main.rs"), "use crate::Config;").is_empty());
    assert_eq!(
        check_source(Path::new("cli/mod.rs"), "use crate::Config;").len(),
        1,
        "crate-root re-exports are for the binary; modules import from the owning module"
    );
}
