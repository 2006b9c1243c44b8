//! `${VAR}` interpolation on string scalars of an already parsed tree, so a variable's value can never
//! change the YAML structure.

use figment::value::Value;

use crate::env::Env;
use crate::error::ConfigError;
use crate::schema::child_path;

/// Replaces every reference in every string of `value`, collecting one error per problem.
pub(crate) fn interpolate_tree(
    value: &mut Value,
    key: &str,
    env: &Env,
    origin: &str,
    errors: &mut Vec<ConfigError>,
) {
    match value {
        Value::String(_, s) => match interpolate(s, env) {
            Ok(out) => *s = out,
            Err(problems) => {
                errors.extend(problems.into_iter().map(|p| match p {
                    Problem::Unset(var) => ConfigError::UnsetVariable {
                        origin: origin.to_owned(),
                        key: key.to_owned(),
                        var,
                    },
                    Problem::Malformed(reason) => ConfigError::Interpolation {
                        origin: origin.to_owned(),
                        key: key.to_owned(),
                        reason,
                    },
                }));
            }
        },
        Value::Dict(_, dict) => {
            for (k, v) in dict.iter_mut() {
                interpolate_tree(v, &child_path(key, k), env, origin, errors);
            }
        }
        Value::Array(_, items) => {
            for (i, v) in items.iter_mut().enumerate() {
                interpolate_tree(v, &format!("{key}[{i}]"), env, origin, errors);
            }
        }
        Value::Char(..) | Value::Bool(..) | Value::Num(..) | Value::Empty(..) => {}
    }
}

/// Adds to `out` the variables referred to in every credential value of `value`: the daemon
/// withholds them from the programs it runs.
pub(crate) fn credential_references(
    value: &Value,
    key: &str,
    out: &mut std::collections::BTreeSet<String>,
) {
    match value {
        Value::String(_, s) if is_credential_key(key) => {
            out.extend(references(s).into_iter().map(str::to_owned));
        }
        Value::Dict(_, dict) => {
            for (k, v) in dict {
                credential_references(v, &child_path(key, k), out);
            }
        }
        Value::Array(_, items) => {
            for (i, v) in items.iter().enumerate() {
                credential_references(v, &format!("{key}[{i}]"), out);
            }
        }
        _ => {}
    }
}

/// Whether the value at `key` is a credential: the values `config check` redacts (signing
/// secrets, HTTP agent headers) and URLs, whose userinfo or query can carry a password or token.
pub(crate) fn is_credential_key(key: &str) -> bool {
    let Some(rest) = key.strip_prefix("webhooks.") else {
        return false;
    };
    let last = rest.rsplit('.').next().unwrap_or(rest);
    matches!(last, "secret" | "secrets" | "url" | "endpoint")
        || last.starts_with("secrets[")
        || (rest.starts_with("agents.") && rest.contains(".headers."))
}

/// The names of the variables `input` refers to, as [`interpolate`] reads them (`$${` is no
/// reference); malformed references are left to it to report.
pub(crate) fn references(input: &str) -> Vec<&str> {
    let mut names = Vec::new();
    let mut rest = input;
    while let Some(at) = rest.find('$') {
        let tail = &rest[at..];
        if let Some(after) = tail.strip_prefix("$${") {
            rest = after;
        } else if let Some(after) = tail.strip_prefix("${") {
            let Some(end) = after.find('}') else {
                break;
            };
            let body = &after[..end];
            let name = body.split_once(":-").map_or(body, |(name, _)| name);
            if is_var_name(name) {
                names.push(name);
            }
            rest = &after[end + 1..];
        } else {
            rest = &tail[1..];
        }
    }
    names
}

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Problem {
    Unset(String),
    Malformed(String),
}

/// `${VAR}`, `${VAR:-default}` (the default also applies when VAR is set but empty, as in the shell)
/// and `$${` for a literal `${`. Every problem in the string is reported, not just the first.
pub(crate) fn interpolate(input: &str, env: &Env) -> Result<String, Vec<Problem>> {
    let mut out = String::with_capacity(input.len());
    let mut problems = Vec::new();
    let mut rest = input;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        if let Some(after) = tail.strip_prefix("$${") {
            out.push_str("${");
            rest = after;
        } else if let Some(after) = tail.strip_prefix("${") {
            let Some(end) = after.find('}') else {
                problems.push(Problem::Malformed(format!(
                    "`{tail}` has no closing `}}`; write ${{VAR}}, or $${{ for a literal ${{"
                )));
                rest = "";
                break;
            };
            let body = &after[..end];
            let (name, default) = match body.split_once(":-") {
                Some((name, default)) => (name, Some(default)),
                None => (body, None),
            };
            if is_var_name(name) {
                match (env.get(name), default) {
                    (Some(""), Some(d)) => out.push_str(d),
                    (Some(v), _) => out.push_str(v),
                    (None, Some(d)) => out.push_str(d),
                    (None, None) => problems.push(Problem::Unset(name.to_owned())),
                }
            } else {
                problems.push(Problem::Malformed(format!(
                    "`${{{body}}}` is not a variable reference; names are letters, digits and `_`, \
                     as in ${{VAR}} or ${{VAR:-default}}; write $${{ for a literal ${{"
                )));
            }
            rest = &after[end + 1..];
        } else {
            out.push('$');
            rest = &tail[1..];
        }
    }
    out.push_str(rest);
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(problems)
    }
}

fn is_var_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &str, expected: Result<&str, Vec<Problem>>) {
        let env = Env::empty()
            .with("A", "alpha")
            .with("EMPTY", "")
            .with("COLON", "a: b");
        assert_eq!(
            interpolate(input, &env),
            expected.map(str::to_owned),
            "input {input:?}"
        );
    }

    fn unset(name: &str) -> Problem {
        Problem::Unset(name.to_owned())
    }

    #[test]
    fn references() {
        check("plain", Ok("plain"));
        check("", Ok(""));
        check("${A}", Ok("alpha"));
        check("x${A}y${A}z", Ok("xalphayalphaz"));
        check("${COLON}", Ok("a: b"));
        check("${EMPTY}", Ok(""));
        check("${MISSING:-fallback}", Ok("fallback"));
        check("${MISSING:-}", Ok(""));
        check("${EMPTY:-fallback}", Ok("fallback"));
        check("${A:-fallback}", Ok("alpha"));
        check("${MISSING:-a:-b}", Ok("a:-b"));
        check("$${A}", Ok("${A}"));
        check("$$${A}", Ok("$${A}"));
        check("cost $5 $", Ok("cost $5 $"));
        check("$A", Ok("$A"));
        check("${MISSING}", Err(vec![unset("MISSING")]));
        check("${ONE}-${TWO}", Err(vec![unset("ONE"), unset("TWO")]));
        check("${_x1}", Err(vec![unset("_x1")]));
    }

    #[test]
    fn malformed() {
        let bad = |input: &str| {
            let env = Env::empty();
            assert!(
                matches!(
                    interpolate(input, &env).as_deref().map_err(Vec::as_slice),
                    Err([Problem::Malformed(_)])
                ),
                "input {input:?}"
            );
        };
        bad("${A");
        bad("${}");
        bad("${1A}");
        bad("${A B}");
        bad("${:-x}");
    }

    #[test]
    fn variable_names_are_read_as_interpolation_reads_them() {
        let names = super::references;
        assert_eq!(names("plain $A ${"), Vec::<&str>::new());
        assert_eq!(names("${A}x${B:-d}${A}"), ["A", "B", "A"]);
        assert_eq!(names("$${A}${B}"), ["B"]);
        assert_eq!(names("${1A}${C}"), ["C"]);
    }

    #[test]
    fn credentials_are_the_secret_header_and_url_values() {
        for (key, credential) in [
            ("webhooks.handlers.github.secret", true),
            ("webhooks.handlers.github.secrets", true),
            ("webhooks.handlers.github.secrets[1]", true),
            ("webhooks.agents.inbox.secret", true),
            ("webhooks.agents.inbox.url", true),
            ("webhooks.agents.inbox.headers.X-Api-Key", true),
            ("webhooks.queue.nats.url", true),
            ("webhooks.telemetry.otlp.endpoint", true),
            ("webhooks.queue.path", false),
            ("webhooks.agents.notify.command[0]", false),
            ("webhooks.handlers.github.path", false),
            ("other.secret", false),
        ] {
            assert_eq!(is_credential_key(key), credential, "{key}");
        }
    }
}
