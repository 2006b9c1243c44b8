//! Checks of the repository itself, run as xtask's tests: every dependency is declared once and
//! used, so that an unused one is noticed when it stops being used rather than found by a reviewer.
//!
//! The manifests are read line by line, as this workspace writes them (`name.workspace = true` or
//! `name = { workspace = true, … }` under `[dependencies]`-like sections); a line this cannot
//! read fails the test rather than being skipped.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use crate::workspace_root;

/// A dependency section of a member's manifest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Section {
    Normal,
    Dev,
    Build,
}

/// The dependency names under each section of a manifest.
fn dependencies(manifest: &str) -> Vec<(Section, String)> {
    let mut section = None;
    let mut found = Vec::new();
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            section = match line {
                "[dependencies]" => Some(Section::Normal),
                "[dev-dependencies]" => Some(Section::Dev),
                "[build-dependencies]" => Some(Section::Build),
                _ => None,
            };
            continue;
        }
        let Some(section) = section else { continue };
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let name = line
            .split(['=', '.'])
            .next()
            .map(str::trim)
            .filter(|name| !name.is_empty() && !name.contains(' '))
            .unwrap_or_else(|| panic!("cannot read the dependency line {line:?}"));
        found.push((section, name.to_owned()));
    }
    found
}

/// Every `.rs` file under `dir`, skipping build output.
fn rust_files(dir: &Path, files: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            if path.file_name().is_some_and(|n| n == "target") {
                continue;
            }
            rust_files(&path, files);
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
}

/// Whether `source` names the crate `krate` as a path (`krate::…`), not as part of a longer name.
fn names(source: &str, krate: &str) -> bool {
    let needle = format!("{krate}::");
    source.match_indices(&needle).any(|(at, _)| {
        source[..at]
            .chars()
            .next_back()
            .is_none_or(|c| !(c.is_alphanumeric() || c == '_'))
    })
}

/// A member's sources, split into what builds the library or binary and what only tests use.
/// Test code is a `tests.rs` file, anything under `tests/` or `benches/`, and the rest of a file
/// from its `#[cfg(test)]` module on (the module comes last, as everywhere in this workspace).
/// `#[path]` modules and the `[[test]]` folders a manifest names outside the member are included.
struct Sources {
    shipped: String,
    test_only: String,
    build_script: String,
}

fn sources(member: &Path, manifest: &str) -> Sources {
    // (file, whether it is test code whatever its contents)
    let mut files: Vec<(PathBuf, bool)> = Vec::new();
    let mut found_files = Vec::new();
    rust_files(member, &mut found_files);
    for line in manifest.lines() {
        if let Some(path) = line.trim().strip_prefix("path = \"../")
            && let Some(path) = path.strip_suffix('"')
            && let Some(dir) = member.join(format!("../{path}")).parent()
        {
            let mut outside = Vec::new();
            rust_files(dir, &mut outside);
            files.extend(outside.into_iter().map(|f| (f, true)));
        }
    }
    for file in found_files {
        let relative = file.strip_prefix(member).unwrap_or(&file).to_owned();
        let test = file.file_name().is_some_and(|n| n == "tests.rs")
            || relative.starts_with("tests")
            || relative.starts_with("benches");
        files.push((file, test));
    }
    let mut found = Sources {
        shipped: String::new(),
        test_only: String::new(),
        build_script: String::new(),
    };
    let mut index = 0;
    while index < files.len() {
        let (file, test) = files[index].clone();
        index += 1;
        let text = fs::read_to_string(&file).unwrap();
        // A `#[path]` module is compiled as part of the file that declares it.
        for line in text.lines() {
            if let Some(path) = line.trim().strip_prefix("#[path = \"")
                && let Some(path) = path.strip_suffix("\"]")
            {
                files.push((file.parent().unwrap().join(path), test));
            }
        }
        if file == member.join("build.rs") {
            found.build_script.push_str(&text);
        } else if test {
            found.test_only.push_str(&text);
        } else if let Some(at) = text.find("#[cfg(test)]\nmod tests {") {
            found.shipped.push_str(&text[..at]);
            found.test_only.push_str(&text[at..]);
        } else {
            found.shipped.push_str(&text);
        }
    }
    found
}

/// The workspace's members, as `[workspace] members` lists them.
fn members(root: &Path) -> Vec<PathBuf> {
    let mut members = vec![root.join("xtask"), root.join("bench")];
    let mut crates: Vec<PathBuf> = fs::read_dir(root.join("crates"))
        .unwrap()
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| path.join("Cargo.toml").exists())
        .collect();
    crates.sort();
    members.extend(crates);
    members
}

#[test]
fn every_dependency_is_used_where_it_is_declared() {
    let mut problems = Vec::new();
    for member in members(&workspace_root()) {
        let manifest = fs::read_to_string(member.join("Cargo.toml")).unwrap();
        let code = sources(&member, &manifest);
        let declared = dependencies(&manifest);
        let normal: BTreeSet<&str> = declared
            .iter()
            .filter(|(s, _)| *s == Section::Normal)
            .map(|(_, n)| n.as_str())
            .collect();
        for (section, name) in &declared {
            let krate = name.replace('-', "_");
            let used = match section {
                Section::Normal => names(&code.shipped, &krate),
                Section::Build => names(&code.build_script, &krate),
                // A dev-dependency that repeats a normal one adds features for the tests.
                Section::Dev => {
                    normal.contains(name.as_str())
                        || names(&code.test_only, &krate)
                        || names(&code.shipped, &krate)
                }
            };
            let only_in_tests = *section == Section::Normal && names(&code.test_only, &krate);
            match (used, only_in_tests) {
                (true, _) => {}
                (false, true) => problems.push(format!(
                    "{}: `{name}` is used only by tests: make it a dev-dependency",
                    member.display()
                )),
                (false, false) => problems.push(format!(
                    "{}: `{name}` ({section:?}) is never used: remove it",
                    member.display()
                )),
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn every_workspace_dependency_is_used_by_a_member() {
    let root = workspace_root();
    let manifest = fs::read_to_string(root.join("Cargo.toml")).unwrap();
    let mut declared = Vec::new();
    let mut in_section = false;
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            in_section = line == "[workspace.dependencies]";
        } else if in_section && !line.is_empty() && !line.starts_with('#') {
            declared.push(line.split('=').next().unwrap().trim().to_owned());
        }
    }
    assert!(declared.len() > 20, "read only {declared:?}");
    let used: BTreeSet<String> = members(&root)
        .iter()
        .flat_map(|m| dependencies(&fs::read_to_string(m.join("Cargo.toml")).unwrap()))
        .map(|(_, name)| name)
        .collect();
    let unused: Vec<&String> = declared.iter().filter(|d| !used.contains(*d)).collect();
    assert!(
        unused.is_empty(),
        "[workspace.dependencies] that no member uses: {unused:?}"
    );
}

#[test]
fn the_reader_sees_what_it_must() {
    let manifest = "[package]\nname = \"x\"\n[dependencies]\nserde.workspace = true\n\
                    hyper = { workspace = true, features = [\"client\"] }\n# note\n\n\
                    [dev-dependencies]\ntempfile.workspace = true\n[lints]\nworkspace = true\n";
    assert_eq!(
        dependencies(manifest),
        [
            (Section::Normal, "serde".to_owned()),
            (Section::Normal, "hyper".to_owned()),
            (Section::Dev, "tempfile".to_owned()),
        ]
    );
    assert!(names("use serde::Deserialize;", "serde"));
    assert!(names("#[derive(serde::Serialize)]", "serde"));
    assert!(!names("use serde_json::Value;", "serde"));
    assert!(!names("clawlet_http::serve", "http"));
}

/// Measured figures (a number with a unit of time, size or ratio) in the comments of `text`,
/// leaving out quoted text, which names a place in BENCHMARKS.md rather than a figure.
fn figures(text: &str) -> Vec<String> {
    const UNITS: &[&str] = &[
        "%", "times", "minutes", "min", "s", "ms", "µs", "MB", "MiB", "KB",
    ];
    let mut found = Vec::new();
    for line in text.lines().filter(|l| l.trim_start().starts_with('#')) {
        let unquoted: String = line.split('"').step_by(2).collect::<Vec<_>>().join(" ");
        let words: Vec<&str> = unquoted.split_whitespace().collect();
        for pair in words.windows(2) {
            let number = pair[0].trim_start_matches('(');
            let unit = pair[1].trim_end_matches([',', ';', '.', ')']);
            if number.parse::<f64>().is_ok() && UNITS.contains(&unit) {
                found.push(format!("{number} {unit}: {}", line.trim()));
            }
        }
    }
    found
}

/// Figures go stale where nobody measures them: they live in BENCHMARKS.md, and the files that
/// explain a setting by them refer to it, by section names that must exist there.
#[test]
fn measured_figures_live_in_benchmarks_md() {
    let root = workspace_root();
    let benchmarks = fs::read_to_string(root.join("BENCHMARKS.md")).unwrap();
    for file in ["Cargo.toml", "deploy/clawlet-webhookd.service"] {
        let text = fs::read_to_string(root.join(file)).unwrap();
        let figures = figures(&text);
        assert!(
            figures.is_empty(),
            "{file}: move these to BENCHMARKS.md and refer to it: {figures:#?}"
        );
        let mut references = 0;
        // `BENCHMARKS.md ("Section", "Other section")`, possibly over two comment lines.
        let joined = text.replace("\n# ", " ");
        for (at, _) in joined.match_indices("BENCHMARKS.md (") {
            let list = joined[at..].split(')').next().unwrap();
            for name in list.split('"').skip(1).step_by(2) {
                references += 1;
                assert!(
                    benchmarks.contains(name),
                    "{file}: BENCHMARKS.md has no {name:?}"
                );
            }
        }
        assert!(
            references > 0,
            "{file}: no reference to a place in BENCHMARKS.md"
        );
    }
}

#[test]
fn figures_are_found_in_comments_only() {
    let text = "# it bought about 5 % of throughput, for a build of about 3 minutes.\n\
                # peaked at 4.6 times its size (\"25 MB delivery\")\nLimitNOFILE=65536\n# 0750 root\n";
    let found: Vec<String> = figures(text)
        .into_iter()
        .map(|f| f.split(':').next().unwrap().to_owned())
        .collect();
    assert_eq!(found, ["5 %", "3 minutes", "4.6 times"]);
}
