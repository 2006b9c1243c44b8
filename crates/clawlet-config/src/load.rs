//! Finding the file, and the figment layers: built-in defaults, the file, `CLAWLET_WEBHOOKS__…`
//! variables, CLI flags.

use std::path::{Path, PathBuf};

use figment::value::{Dict, Map, Value};
use figment::{Figment, Metadata, Profile, Provider};

use crate::env::Env;
use crate::error::{ConfigError, ConfigErrors};
use crate::interpolate::{credential_references, interpolate_tree};
use crate::raw::RawConfig;
use crate::resolve::{Origins, resolve};
use crate::schema::{ROOT_KEY, WEBHOOKS, check_keys, check_root};
use crate::{LoadOptions, Loaded};

/// Variables that override keys: `CLAWLET_WEBHOOKS__PORT=9000` is `webhooks.port`. Only this prefix is
/// read, so unrelated `CLAWLET_…` variables (`CLAWLET_CONFIG`, test settings) are never taken as keys.
const ENV_PREFIX: &str = "CLAWLET_WEBHOOKS__";

const DEFAULTS_LAYER: &str = "built-in defaults";
const ENV_LAYER: &str = "environment";
const CLI_LAYER: &str = "command line";

/// One figment layer from an already built tree, named so an extraction error says where the value
/// came from.
struct Layer {
    name: String,
    dict: Dict,
}

impl Provider for Layer {
    fn metadata(&self) -> Metadata {
        Metadata::named(self.name.clone())
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        Ok(Profile::Default.collect(self.dict.clone()))
    }
}

/// The file to read and whether the user named it (then it must exist).
fn locate(opts: &LoadOptions) -> Option<(PathBuf, bool)> {
    if let Some(p) = &opts.path {
        return Some((p.clone(), true));
    }
    if let Some(p) = opts.env.get("CLAWLET_CONFIG").filter(|p| !p.is_empty()) {
        return Some((PathBuf::from(p), true));
    }
    let home = opts.env.get("HOME").filter(|h| !h.is_empty())?;
    Some((Path::new(home).join(".clawlet").join("config.yaml"), false))
}

pub(crate) fn load(opts: &LoadOptions) -> Result<Loaded, ConfigErrors> {
    let mut errors = Vec::new();
    let mut warnings = Vec::new();
    let mut origins = Origins::default();
    let mut credential_vars = std::collections::BTreeSet::new();

    let mut source = None;
    let mut looked_for = None;
    let mut file_dict = Dict::new();
    if let Some((path, explicit)) = locate(opts) {
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                let origin = path.display().to_string();
                file_dict = parse_file(&path, &text)?;
                for (key, value) in &mut file_dict {
                    credential_references(value, key, &mut credential_vars);
                    interpolate_tree(value, key, &opts.env, &origin, &mut errors);
                }
                check_root(&file_dict, &origin, &mut errors, &mut warnings);
                file_dict.retain(|k, _| k == ROOT_KEY);
                drop_nulls(&mut file_dict, "");
                origins.file = Some(origin);
                source = Some(path);
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => {
                looked_for = Some(path);
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(ConfigError::NotFound { path }.into());
            }
            Err(e) => {
                return Err(ConfigError::Read {
                    path,
                    reason: e.to_string(),
                }
                .into());
            }
        }
    }

    let env_dict = env_layer(&opts.env, &mut origins, &mut errors);
    // Every override, not only those of a credential key: one variable can set a whole handler,
    // secret included, and these settings are the daemon's, not its agents'.
    credential_vars.extend(origins.env.values().cloned());
    let cli_dict = cli_layer(opts, &mut origins);

    let defaults = match Value::serialize(RawConfig::default()) {
        Ok(Value::Dict(_, d)) => d,
        // Serialising plain structs of strings and numbers cannot fail; an empty layer still leaves
        // serde's own defaults in place.
        _ => Dict::new(),
    };
    let file_name = origins.file.clone().unwrap_or_default();
    let figment = Figment::new()
        .merge(Layer {
            name: DEFAULTS_LAYER.to_owned(),
            dict: defaults,
        })
        .merge(Layer {
            name: file_name,
            dict: file_dict,
        })
        .merge(Layer {
            name: ENV_LAYER.to_owned(),
            dict: env_dict,
        })
        .merge(Layer {
            name: CLI_LAYER.to_owned(),
            dict: cli_dict,
        });

    // Lossy so `CLAWLET_WEBHOOKS__PORT=9000`, a string, fills a number.
    let raw: RawConfig = match figment.extract_lossy() {
        Ok(raw) => raw,
        Err(e) => {
            // serde stops at the first bad value; extracting section by section finds the others.
            let found = e.into_iter().chain(section_errors(&figment));
            let found: Vec<ConfigError> = found.map(|e| extraction_error(&e, &origins)).collect();
            add_new(&mut errors, found);
            return Err(ConfigErrors(errors));
        }
    };
    match resolve(raw, &origins, &opts.env) {
        Ok((config, more)) if errors.is_empty() => {
            warnings.extend(more);
            Ok(Loaded {
                config,
                source,
                looked_for,
                warnings,
                credential_vars: credential_vars.into_iter().collect(),
            })
        }
        Ok(_) => Err(ConfigErrors(errors)),
        Err(more) => {
            add_new(&mut errors, more);
            Err(ConfigErrors(errors))
        }
    }
}

/// Adds the errors about keys not reported yet: a value whose variable is unset still holds
/// `${VAR}` and would fail its own check too, and one message per key is enough.
fn add_new(errors: &mut Vec<ConfigError>, more: Vec<ConfigError>) {
    let before = errors.len();
    for e in more {
        let known = e
            .key()
            .is_some_and(|k| errors[..before].iter().any(|r| r.key() == Some(k)));
        if !known && !errors.contains(&e) {
            errors.push(e);
        }
    }
}

/// Extraction errors of each `webhooks.*` section and of each handler, agent and route on its own.
fn section_errors(figment: &Figment) -> Vec<figment::Error> {
    use crate::raw::{
        RawAgent, RawHandler, RawLimits, RawLogging, RawQueue, RawRateLimit, RawRoute, RawSsl,
        RawTelemetry,
    };
    let mut out = Vec::new();
    macro_rules! sections {
        ($($field:ident: $ty:ty),* $(,)?) => {$(
            if let Err(e) = figment.extract_inner_lossy::<$ty>(concat!("webhooks.", stringify!($field))) {
                out.push(e);
            }
        )*};
    }
    sections!(
        enabled: bool, host: String, port: i64, rate_limit: RawRateLimit, ssl: RawSsl,
        allowed_ips: Vec<String>, trusted_proxies: Vec<String>, max_body_bytes: u64,
        logging: RawLogging, limits: RawLimits, queue: RawQueue, telemetry: RawTelemetry,
        routes: Vec<RawRoute>,
    );
    let entries = |section: &str| -> Vec<String> {
        match figment.find_value(&format!("{ROOT_KEY}.{section}")) {
            // A name with a dot cannot be addressed by a figment key path; the whole-map error
            // already covers it.
            Ok(Value::Dict(_, d)) => d.keys().filter(|k| !k.contains('.')).cloned().collect(),
            _ => Vec::new(),
        }
    };
    for name in entries("handlers") {
        if let Err(e) =
            figment.extract_inner_lossy::<RawHandler>(&format!("{ROOT_KEY}.handlers.{name}"))
        {
            out.push(e);
        }
    }
    for name in entries("agents") {
        if let Err(e) =
            figment.extract_inner_lossy::<RawAgent>(&format!("{ROOT_KEY}.agents.{name}"))
        {
            out.push(e);
        }
    }
    out.into_iter().flatten().map(reroot).collect()
}

/// `extract_inner` appends the section's path after the field's (`events.webhooks.handlers.x`);
/// put it back in front.
fn reroot(mut e: figment::Error) -> figment::Error {
    if let Some(at) = e.path.iter().position(|p| p == ROOT_KEY)
        && at > 0
    {
        e.path.rotate_left(at);
    }
    e
}

/// A key with an empty value (`cert: null`, `handlers:` with everything below commented out) means
/// the same as an absent key: its default. A handler or agent with no settings is still defined.
fn drop_nulls(dict: &mut Dict, path: &str) {
    let entries_stay = path == "webhooks.handlers" || path == "webhooks.agents";
    dict.retain(|_, v| entries_stay || !matches!(v, Value::Empty(..)));
    for (key, value) in dict.iter_mut() {
        match value {
            Value::Empty(..) => *value = Value::from(Dict::new()),
            Value::Dict(_, inner) => drop_nulls(inner, &crate::schema::child_path(path, key)),
            _ => {}
        }
    }
}

fn parse_file(path: &Path, text: &str) -> Result<Dict, ConfigErrors> {
    let syntax = |reason: String| {
        ConfigErrors::from(ConfigError::Syntax {
            path: path.to_owned(),
            reason,
        })
    };
    // YAML 1.2 booleans only, so `secret: y` or `secret: no` stays a string; a leading zero keeps
    // `0123` a string too. Duplicate keys are an error (the default), never silently merged.
    let options = serde_saphyr::options! {
        strict_booleans: true,
        leading_zero_numbers_as_strings: true,
        with_snippet: false,
    };
    let value: Option<Value> = serde_saphyr::from_str_with_options(text, options).map_err(|e| {
        let text = e.to_string();
        let text = text.trim_end();
        let text = text.strip_prefix("error: ").unwrap_or(text);
        // The parser's advice names its own Rust API; an operator needs the YAML fix.
        let advice = ", set DuplicateKeyPolicy in Options if acceptable";
        match text.split_once(advice) {
            Some((head, tail)) => syntax(format!("{head}{tail}; keep only one of them")),
            None => syntax(text.to_owned()),
        }
    })?;
    match value {
        None | Some(Value::Empty(..)) => Ok(Dict::new()),
        Some(Value::Dict(_, d)) => Ok(d),
        Some(_) => Err(syntax(
            "the top level must be a mapping with a `webhooks:` key".to_owned(),
        )),
    }
}

fn env_layer(env: &Env, origins: &mut Origins, errors: &mut Vec<ConfigError>) -> Dict {
    let mut root = Dict::new();
    for (name, value) in env.iter() {
        let Some(rest) = name.strip_prefix(ENV_PREFIX) else {
            continue;
        };
        let mut path: Vec<String> = vec![ROOT_KEY.to_owned()];
        path.extend(rest.split("__").map(str::to_ascii_lowercase));
        let origin = format!("environment variable {name}");
        if path.iter().any(String::is_empty) {
            errors.push(ConfigError::Invalid {
                origin,
                key: path.join("."),
                message: "has an empty key segment; separate keys with exactly two underscores"
                    .to_owned(),
            });
            continue;
        }
        // Scalars stay strings (lossy extraction turns them into numbers or booleans where the
        // schema wants one), so a secret like 0123 keeps its leading zero; lists and maps are parsed.
        let parsed = match value.parse::<Value>() {
            Ok(v @ (Value::Array(..) | Value::Dict(..))) => v,
            _ => Value::from(value.to_owned()),
        };
        let mut single = Dict::new();
        insert_path(&mut single, &path[1..], parsed.clone());
        check_keys(&Value::from(single), &WEBHOOKS, ROOT_KEY, &origin, errors);
        insert_path(&mut root, &path, parsed);
        origins.env.insert(path.join("."), name.to_owned());
    }
    root
}

fn cli_layer(opts: &LoadOptions, origins: &mut Origins) -> Dict {
    let mut webhooks = Dict::new();
    if let Some(host) = &opts.host {
        webhooks.insert("host".to_owned(), Value::from(host.clone()));
        origins.cli.insert("webhooks.host".to_owned(), "--host");
    }
    if let Some(port) = opts.port {
        webhooks.insert("port".to_owned(), Value::from(port));
        origins
            .cli
            .insert("webhooks.port".to_owned(), "--webhook-port");
    }
    let mut root = Dict::new();
    if !webhooks.is_empty() {
        root.insert(ROOT_KEY.to_owned(), Value::from(webhooks));
    }
    root
}

fn insert_path(dict: &mut Dict, path: &[String], value: Value) {
    match path {
        [] => {}
        [last] => {
            dict.insert(last.clone(), value);
        }
        [first, rest @ ..] => {
            let entry = dict
                .entry(first.clone())
                .or_insert_with(|| Value::from(Dict::new()));
            if !matches!(entry, Value::Dict(..)) {
                *entry = Value::from(Dict::new());
            }
            if let Value::Dict(_, inner) = entry {
                insert_path(inner, rest, value);
            }
        }
    }
}

fn extraction_error(e: &figment::Error, origins: &Origins) -> ConfigError {
    let key = e.path.join(".");
    let origin = match e.metadata.as_ref().map(|m| m.name.as_ref()) {
        Some(ENV_LAYER) | Some(CLI_LAYER) | None => origins.of(&key),
        Some(name) => name.to_owned(),
    };
    let message = match &e.kind {
        figment::error::Kind::InvalidType(found, expected) => {
            let integer = [
                "u8", "u16", "u32", "u64", "usize", "i8", "i16", "i32", "i64", "isize",
            ];
            let expected = if integer.contains(&expected.as_str()) {
                "a whole number"
            } else {
                expected
            };
            let hint = if expected.contains("string") || expected.contains("char") {
                "put the value in quotes"
            } else if expected.contains("bool") {
                "write true or false"
            } else if expected == "a whole number" {
                "write a whole number without quotes"
            } else if expected.contains("sequence") {
                "write a list, as in [a, b]"
            } else if expected.contains("map") || expected.contains("struct") {
                "write a mapping of keys to values"
            } else {
                "fix the value"
            };
            format!("expected {expected}, found {found}; {hint}")
        }
        other => format!("{other}; fix the value"),
    };
    ConfigError::Invalid {
        origin,
        key,
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The variables of secrets, headers and URLs, and the overrides, are listed for the daemon
    /// to withhold from its agents; a variable used only for a path is not, so `HOME` stays.
    #[test]
    fn credential_variables_are_listed_and_others_are_not() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.yaml");
        std::fs::write(
            &path,
            r#"webhooks:
  queue: { path: "${HOME}/journal.db" }
  handlers:
    github: { secret: "${GH_SECRET}" }
    custom: { kind: custom, secrets: ["${OLD}", "${NEW:-spare}"] }
  agents:
    inbox:
      kind: http
      url: "http://127.0.0.1:9/events?token=${URL_TOKEN}"
      headers: { X-Api-Key: "${API_KEY}" }
    notify: { kind: exec, command: ["${HOME}/bin/notify", "${ARG}"] }
  routes:
    - agent: inbox
"#,
        )
        .unwrap();
        let env = Env::empty()
            .with("HOME", "/home/clawlet")
            .with("GH_SECRET", "s1")
            .with("OLD", "s2")
            .with("URL_TOKEN", "t")
            .with("API_KEY", "k")
            .with("ARG", "a")
            .with("CLAWLET_WEBHOOKS__PORT", "9000");
        let opts = LoadOptions {
            path: Some(path),
            env,
            ..LoadOptions::default()
        };
        let loaded = load(&opts).unwrap();
        assert_eq!(
            loaded.credential_vars,
            [
                "API_KEY",
                "CLAWLET_WEBHOOKS__PORT",
                "GH_SECRET",
                "NEW",
                "OLD",
                "URL_TOKEN"
            ]
        );
    }
}
